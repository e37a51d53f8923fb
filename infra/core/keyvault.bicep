// Holds the app's secrets so that app settings carry only Key Vault references.

param name string
param location string
param tags object = {}

@description('Name of the secret that signs reviewer links. azd reads it back on every provision (see main.parameters.json).')
param reviewSigningKeySecretName string = 'hitl-review-signing-key'

@secure()
@description('Value of the reviewer-link signing key.')
param reviewSigningKey string

@description('Name of the secret that holds the notification webhook URL, created only when a URL is given.')
param notifyWebhookSecretName string = 'hitl-notify-webhook-url'

@secure()
@description('Optional notification webhook URL. Many webhook URLs embed their own token, so it is stored like a secret.')
param notifyWebhookUrl string = ''

// Passed separately from the URL: an output that inspects a @secure() parameter,
// even only with empty(), is flagged as possibly leaking it.
@description('True when notifyWebhookUrl is non-empty.')
param storeNotifyWebhook bool = false

@description('Name of the secret that holds the escalation webhook URL, created only when a URL is given.')
param escalationWebhookSecretName string = 'hitl-escalation-webhook-url'

@secure()
@description('Optional escalation webhook URL, stored like the notification webhook.')
param escalationWebhookUrl string = ''

@description('True when escalationWebhookUrl is non-empty.')
param storeEscalationWebhook bool = false

@secure()
@description('Optional Slack bot token (xoxb-...).')
param slackBotToken string = ''

@secure()
@description('Slack signing secret; needed with the bot token.')
param slackSigningSecret string = ''

@description('True when the Slack bot token and signing secret are given.')
param storeSlack bool = false

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Access is granted with Azure roles (roles.bicep) instead of access policies,
    // so one mechanism governs storage, monitoring, OpenAI and secrets alike.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // Purge protection is left off on purpose: once on it can never be turned off,
    // and `azd down --purge` could no longer free the vault name for a redeploy.
    publicNetworkAccess: 'Enabled'
  }
}

resource reviewSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: reviewSigningKeySecretName
  properties: {
    value: reviewSigningKey
    contentType: 'text/plain'
  }
}

resource notifyWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeNotifyWebhook) {
  parent: vault
  name: notifyWebhookSecretName
  properties: {
    value: notifyWebhookUrl
    contentType: 'text/uri-list'
  }
}

resource escalationWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeEscalationWebhook) {
  parent: vault
  name: escalationWebhookSecretName
  properties: {
    value: escalationWebhookUrl
    contentType: 'text/uri-list'
  }
}

resource slackBotTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeSlack) {
  parent: vault
  name: 'hitl-slack-bot-token'
  properties: {
    value: slackBotToken
    contentType: 'text/plain'
  }
}

resource slackSigningSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeSlack) {
  parent: vault
  name: 'hitl-slack-signing-secret'
  properties: {
    value: slackSigningSecret
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
// Versionless URIs: a Key Vault reference without a version follows the latest
// version, so rotating a secret needs no change to the app settings.
output reviewSigningKeyUri string = reviewSigningKeySecret.properties.secretUri
// Built from the vault URI (which ends with '/') rather than read from the
// conditional resource, so the output is well defined when no URL was given.
output notifyWebhookUri string = storeNotifyWebhook ? '${vault.properties.vaultUri}secrets/${notifyWebhookSecretName}' : ''
output escalationWebhookUri string = storeEscalationWebhook ? '${vault.properties.vaultUri}secrets/${escalationWebhookSecretName}' : ''
output slackBotTokenUri string = storeSlack ? '${vault.properties.vaultUri}secrets/hitl-slack-bot-token' : ''
output slackSigningSecretUri string = storeSlack ? '${vault.properties.vaultUri}secrets/hitl-slack-signing-secret' : ''
