// The function app on a Flex Consumption (FC1) plan, running as the
// user-assigned identity, with every app setting the code reads.
//
// Convention the infra tests rely on: app settings are written only in the
// `*Settings` variables below and applied by the `appSettings` config resource.

param name string
param planName string
param location string
param tags object = {}

@description('azd deploys the service of this name (azure.yaml) to the resource carrying this tag.')
param serviceName string = 'api'

param identityId string
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerUrl string

param applicationInsightsConnectionString string

param openAiEndpoint string
param openAiDeploymentName string

@description('Durable Functions task hub; host.json reads it as %TASKHUB_NAME%.')
param taskHubName string

@allowed([
  'storage'
  'dts'
])
@description('Durable Functions backend. It decides which host.json the azd hooks package, and here which settings that host.json needs.')
param durableBackend string = 'storage'

@description('Endpoint of the Durable Task Scheduler; only used with durableBackend dts.')
param durableTaskSchedulerEndpoint string = ''

@description('Versionless Key Vault URI of the reviewer-link signing key.')
param reviewSigningKeyUri string

@description('Versionless Key Vault URI of the notification webhook URL; empty when notifications are off.')
param notifyWebhookUri string = ''

@description('Key Vault URI of the escalation webhook secret; empty when escalations use the notification webhook.')
param escalationWebhookUri string = ''

@description('Endpoint of the Communication Services resource that sends review e-mails; empty: e-mail is off.')
param communicationEndpoint string = ''

@description('Sender address of review e-mails (the Azure-managed domain\'s DoNotReply address).')
param emailSenderAddress string = ''

@description('Key Vault URIs of the Slack bot token and signing secret; empty when Slack is off.')
param slackBotTokenUri string = ''
param slackSigningSecretUri string = ''

@description('Slack channel id for role, group and anyone seats.')
param slackChannel string = ''

param pythonVersion string = '3.13'

@minValue(1)
@maxValue(1000)
@description('Upper bound on scale-out. Each instance polls the task hub queues, so this also caps storage transactions.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Flex Consumption is Linux only.
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Without this the platform resolves Key Vault references with a
    // system-assigned identity, which this app does not have.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          // The package is fetched with the identity, so the storage account
          // can keep shared keys disabled.
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      // On Flex Consumption the runtime and version live here; the legacy
      // FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION settings are deprecated.
      runtime: {
        name: 'python'
        version: pythonVersion
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
    }
  }
}

// Host storage (also the Durable task hub with the Azure Storage backend) through
// the identity instead of a connection string. All three service URIs are needed
// because Durable Functions on Azure Storage uses queues and tables as well as
// blobs. The host needs this storage with either backend.
var hostStorageSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
}

var monitoringSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  // Local auth is disabled on the component, so the host must send Entra tokens.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var hitlSettings = {
  // The code builds ManagedIdentityCredential(client_id=AZURE_CLIENT_ID); with a
  // user-assigned identity the client id has to be explicit.
  AZURE_CLIENT_ID: identityClientId
  AZURE_OPENAI_ENDPOINT: openAiEndpoint
  AZURE_OPENAI_DEPLOYMENT: openAiDeploymentName
  TASKHUB_NAME: taskHubName
  HITL_WRITER: 'openai'
  HITL_PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
  // The deployed package is mounted read-only; /tmp is the writable scratch
  // space of an instance. It is per instance and lost on scale-in, which is
  // acceptable for the demo publisher.
  HITL_PUBLISH_DIR: '/tmp/hitl-published'
  HITL_REVIEW_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${reviewSigningKeyUri})'
}

// The DTS variant of host.json names this setting in
// storageProvider.connectionStringName; the Functions host reads it, the app code
// never does. It holds an address and the identity's client id, no key: the host
// gets a token for the identity, and roles.bicep grants that identity
// Durable Task Data Contributor on the task hub. With Azure Storage the task hub
// uses the AzureWebJobsStorage settings above instead.
var useDts = durableBackend == 'dts'
var durableTaskSettings = useDts ? {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
} : {}

// Set only when notifications are configured: an empty value would still show
// up as a setting and read as "configured but blank".
var notifySettings = union(empty(notifyWebhookUri) ? {} : {
  HITL_NOTIFY_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${notifyWebhookUri})'
}, empty(escalationWebhookUri) ? {} : {
  HITL_ESCALATION_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${escalationWebhookUri})'
})

// Teams: the bot's app id is this app's identity, given to the Microsoft 365 Agents
// SDK under its own setting names; the SDK gets the bot's tokens with it.
var teamsSettings = {
  CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID: identityClientId
  CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE: 'UserManagedIdentity'
  CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID: tenant().tenantId
}

// E-mail and Slack only when they are deployed or given.
var channelSettings = union(empty(communicationEndpoint) ? {} : {
  HITL_ACS_ENDPOINT: communicationEndpoint
  HITL_EMAIL_FROM: emailSenderAddress
}, empty(slackBotTokenUri) ? {} : {
  HITL_SLACK_BOT_TOKEN: '@Microsoft.KeyVault(SecretUri=${slackBotTokenUri})'
  HITL_SLACK_SIGNING_SECRET: '@Microsoft.KeyVault(SecretUri=${slackSigningSecretUri})'
  HITL_SLACK_CHANNEL: slackChannel
})

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(hostStorageSettings, monitoringSettings, hitlSettings, durableTaskSettings, notifySettings,
    teamsSettings, channelSettings)
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output uri string = 'https://${site.properties.defaultHostName}'
