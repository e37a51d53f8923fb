// Every permission in the deployment, in one place. The app holds no keys or
// connection strings, so these role assignments are the whole access model.

param storageAccountName string
param applicationInsightsName string
param keyVaultName string

@description('Azure OpenAI account created by this template; empty when an existing endpoint is used.')
param openAiAccountName string = ''

// The scheduler's and task hub's names arrive with either backend, so the
// resource ids below are well formed even when useDurableTask is false and
// nothing is assigned.
@description('Name of the Durable Task Scheduler that main.bicep creates with the dts backend.')
param durableTaskSchedulerName string = ''

@description('Task hub in that scheduler that the app uses.')
param durableTaskHubName string = ''

@description('True with the Durable Task Scheduler backend (DURABLE_BACKEND=dts); false with Azure Storage.')
param useDurableTask bool = false

@description('Communication Services resource that sends review e-mails; empty when e-mail is not deployed.')
param communicationName string = ''

@description('Principal id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Principal id of whoever runs azd (a developer, or the CI service principal). Empty to skip.')
param userPrincipalId string = ''

// Built-in role definition ids. They are the same in every tenant and cloud.
var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
  communicationEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

// Blob Data Owner rather than Contributor: the Functions host manages blob leases
// and containers for its own state, and the deployment container is read with
// the same identity. Queues and tables carry the Durable Functions task hub.
var storageRoles = [
  roleIds.storageBlobDataOwner
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
]

var withUser = !empty(userPrincipalId)
var withOpenAi = !empty(openAiAccountName)
var withEmail = !empty(communicationName)
var withDts = useDurableTask && !empty(durableTaskSchedulerName) && !empty(durableTaskHubName)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (withOpenAi) {
  name: openAiAccountName
}

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' existing = if (withDts) {
  name: durableTaskSchedulerName

  resource taskHub 'taskHubs' existing = {
    name: durableTaskHubName
  }
}

// principalType is given for the new identity because Entra ID may not have
// replicated it yet; with the type stated, ARM skips the directory lookup.
resource identityStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: {
  name: guid(storage.id, identityPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Telemetry ingestion needs a token because local auth is off on the component.
resource identityMonitoring 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roleIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Lets the platform resolve the @Microsoft.KeyVault(...) app settings.
resource identitySecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource identityOpenAi 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withOpenAi) {
  name: guid(openAi.id, identityPrincipalId, roleIds.cognitiveServicesOpenAiUser)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.cognitiveServicesOpenAiUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// With the Durable Task Scheduler backend the host authenticates to the
// scheduler with this identity (Authentication=ManagedIdentity in
// DURABLE_TASK_SCHEDULER_CONNECTION_STRING). Scoped to the one task hub the app
// uses rather than the whole scheduler.
resource identityDurableTask 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withDts) {
  name: guid(scheduler::taskHub.id, identityPrincipalId, roleIds.durableTaskDataContributor)
  scope: scheduler::taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.durableTaskDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' existing = if (withEmail) {
  name: communicationName
}

// Sending e-mail with an Entra token needs a role on the Communication Services
// resource; this built-in role is the one Communication Services documents for it.
resource identityEmail 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withEmail) {
  name: guid(communication.id, identityPrincipalId, roleIds.communicationEmailServiceOwner)
  scope: communication
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.communicationEmailServiceOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The deploying principal gets the same data access so that a local `func start`
// or the devhost can run against the deployed storage and model with
// DefaultAzureCredential (az login). No principalType: it may be a user or the CI
// service principal, and ARM looks the type up itself.
resource userStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: if (withUser) {
  name: guid(storage.id, userPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: userPrincipalId
  }
}]

resource userOpenAi 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser && withOpenAi) {
  name: guid(openAi.id, userPrincipalId, roleIds.cognitiveServicesOpenAiUser)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.cognitiveServicesOpenAiUser)
    principalId: userPrincipalId
  }
}

// The scheduler's dashboard signs in as the person looking at it and needs a
// Durable Task role on the task hub; the same role lets a local host run against
// the deployed task hub.
resource userDurableTask 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser && withDts) {
  name: guid(scheduler::taskHub.id, userPrincipalId, roleIds.durableTaskDataContributor)
  scope: scheduler::taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.durableTaskDataContributor)
    principalId: userPrincipalId
  }
}

// azd's secretOrRandomPassword (main.parameters.json) reads the signing key back
// on the next provision; without read access it would mint a new key and break
// every review link that is still pending.
resource userSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withUser) {
  name: guid(vault.id, userPrincipalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: userPrincipalId
  }
}
