// Entry point for `azd provision` / `azd up`: one resource group per azd
// environment, holding everything the human-in-the-loop review app needs.
// Nothing here produces a key or connection string for the app; access is by
// managed identity and the role assignments in core/roles.bicep.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region for all resources. It must offer Flex Consumption: az functionapp list-flexconsumption-locations.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the principal running azd. azd fills it in; it receives data access for local runs.')
param principalId string = ''

@description('Endpoint of an existing Azure OpenAI resource. Empty (the default) creates a new one.')
param openAiEndpoint string = ''

@description('Region of the new Azure OpenAI resource; empty means the same as location. Ignored with an existing endpoint.')
param openAiLocation string = ''

@description('Chat deployment the app calls. With an existing endpoint this must be a deployment that already exists there.')
param openAiDeploymentName string = 'gpt-4o-mini'

param openAiModelName string = 'gpt-4o-mini'
param openAiModelVersion string = '2024-07-18'
@description('GlobalStandard routes requests across regions and has the widest quota for small models; use Standard to keep processing in one region.')
param openAiDeploymentSku string = 'GlobalStandard'

@description('Model capacity in thousands of tokens per minute.')
param openAiCapacity int = 10

@minLength(3)
@maxLength(45)
@description('Durable Functions task hub name: letters and digits only, starting with a letter (it names storage queues and tables, or the scheduler\'s task hub).')
param taskHubName string = 'HitlReviewHub'

@allowed([
  'storage'
  'dts'
])
@description('Durable Functions backend: Azure Storage queues and tables in the app\'s storage account, or a Durable Task Scheduler. azd reads DURABLE_BACKEND; scripts/select-durable-backend.py packages the matching host.json.')
param durableBackend string = 'storage'

@allowed([
  'Consumption'
  'Dedicated'
])
@description('Durable Task Scheduler billing model; only used with durableBackend dts.')
param durableTaskSchedulerSku string = 'Consumption'

@minValue(1)
@maxValue(3)
@description('Capacity units of a Dedicated Durable Task Scheduler.')
param durableTaskSchedulerCapacity int = 1

@secure()
@description('Reviewer-link signing key. azd passes the value already in Key Vault (or a fresh random one); the default only serves plain ARM deployments and rotates the key on every run.')
param reviewSigningKey string = newGuid()

@secure()
@description('Optional webhook that is called when a draft waits for review. Stored in Key Vault.')
param notifyWebhookUrl string = ''

@secure()
@description('Optional webhook for escalations (reviews with on_timeout "escalate"). Stored in Key Vault.')
param escalationWebhookUrl string = ''

@secure()
@description('Optional Slack bot token (xoxb-...); with the signing secret it turns Slack on. Stored in Key Vault.')
param slackBotToken string = ''

@secure()
@description('Slack app signing secret (with the bot token). Stored in Key Vault.')
param slackSigningSecret string = ''

@description('Slack channel id where role, group and anyone seats are notified.')
param slackChannel string = ''

@description('Deploy Azure Communication Services Email for review e-mails.')
param deployEmail bool = true

param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

// Deterministic per subscription + environment + region, so re-running azd
// updates the same resources instead of creating new ones.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var createOpenAi = empty(openAiEndpoint)
var useDts = durableBackend == 'dts'
var durableTaskSchedulerName = 'dts-${resourceToken}'
var chatDeploymentName = empty(openAiDeploymentName) ? openAiModelName : openAiDeploymentName

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    reviewSigningKey: reviewSigningKey
    notifyWebhookUrl: notifyWebhookUrl
    storeNotifyWebhook: !empty(notifyWebhookUrl)
    escalationWebhookUrl: escalationWebhookUrl
    storeEscalationWebhook: !empty(escalationWebhookUrl)
    slackBotToken: slackBotToken
    slackSigningSecret: slackSigningSecret
    storeSlack: !empty(slackBotToken)
  }
}

module email 'core/email.bicep' = if (deployEmail) {
  name: 'email'
  scope: rg
  params: {
    communicationName: 'acs-${resourceToken}'
    emailServiceName: 'acse-${resourceToken}'
    tags: tags
  }
}

module openAi 'core/openai.bicep' = if (createOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: chatDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSku: openAiDeploymentSku
    capacity: openAiCapacity
  }
}

// Only with DURABLE_BACKEND=dts. With the default (storage) the task hub lives in
// the storage account above and nothing of the scheduler is deployed.
module durableTask 'core/durabletask.bicep' = if (useDts) {
  name: 'durabletask'
  scope: rg
  params: {
    name: durableTaskSchedulerName
    // Same region as the app: Microsoft recommends it for latency and networking.
    location: location
    tags: tags
    taskHubName: taskHubName
    skuName: durableTaskSchedulerSku
    capacity: durableTaskSchedulerCapacity
  }
}

module roles 'core/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    // The name is known before deployment, so the role module does not have to
    // wait on (or dereference) the conditional OpenAI module.
    openAiAccountName: createOpenAi ? 'oai-${resourceToken}' : ''
    // Likewise known up front. The Durable Task roles are only assigned with dts.
    durableTaskSchedulerName: durableTaskSchedulerName
    durableTaskHubName: taskHubName
    useDurableTask: useDts
    communicationName: deployEmail ? 'acs-${resourceToken}' : ''
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
  dependsOn: [
    openAi
    durableTask
    email
  ]
}

module functionApp 'app/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    openAiEndpoint: createOpenAi ? openAi!.outputs.endpoint : openAiEndpoint
    openAiDeploymentName: chatDeploymentName
    taskHubName: taskHubName
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useDts ? durableTask!.outputs.endpoint : ''
    reviewSigningKeyUri: keyVault.outputs.reviewSigningKeyUri
    notifyWebhookUri: keyVault.outputs.notifyWebhookUri
    escalationWebhookUri: keyVault.outputs.escalationWebhookUri
    communicationEndpoint: deployEmail ? email!.outputs.endpoint : ''
    emailSenderAddress: deployEmail ? email!.outputs.senderAddress : ''
    slackBotTokenUri: keyVault.outputs.slackBotTokenUri
    slackSigningSecretUri: keyVault.outputs.slackSigningSecretUri
    slackChannel: slackChannel
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host starts as soon as the site exists; granting storage, Key Vault and
  // telemetry access first avoids a start-up spent failing on 403s.
  dependsOn: [
    roles
  ]
}

module bot 'core/bot.bicep' = {
  name: 'bot'
  scope: rg
  params: {
    name: 'bot-${resourceToken}'
    tags: tags
    identityClientId: identity.outputs.clientId
    identityId: identity.outputs.id
    messagingEndpoint: '${functionApp.outputs.uri}/api/messages'
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URL string = functionApp.outputs.uri
// Not named AZURE_CLIENT_ID: in CI that name belongs to the deploying service
// principal (deploy.yml), and azd writes outputs into the same environment.
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// Needed to grant the app access to an existing Azure OpenAI resource by hand.
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_OPENAI_ENDPOINT string = createOpenAi ? openAi!.outputs.endpoint : openAiEndpoint
output AZURE_OPENAI_DEPLOYMENT string = chatDeploymentName
// main.parameters.json reads this back to find the existing signing key.
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output TASKHUB_NAME string = taskHubName
// The backend this provision deployed. Not named DURABLE_BACKEND, which is the
// user's choice: the azd hooks compare the two and refuse to deploy a host.json
// for one backend onto infrastructure provisioned for the other.
output AZURE_DURABLE_BACKEND string = durableBackend
output AZURE_DURABLE_TASK_SCHEDULER_NAME string = useDts ? durableTaskSchedulerName : ''
output AZURE_DURABLE_TASK_SCHEDULER_ENDPOINT string = useDts ? durableTask!.outputs.endpoint : ''
output AZURE_BOT_NAME string = bot.outputs.name
output AZURE_BOT_APP_ID string = identity.outputs.clientId
