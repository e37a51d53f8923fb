// The Azure Bot for Teams: its app id is the function app's user-assigned managed
// identity (no client secret anywhere), its messaging endpoint the app's
// /api/messages, and the Teams channel is on. The bot resource is global; Teams
// reaches the endpoint through the Bot Framework, which signs each request.

param name string
param tags object = {}

@description('Client id of the user-assigned identity: the bot\'s app id.')
param identityClientId string

@description('Resource id of that identity.')
param identityId string

@description('https://<function app host>/api/messages')
param messagingEndpoint string

param displayName string = 'Content review'

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: 'F0'
  }
  properties: {
    displayName: displayName
    endpoint: messagingEndpoint
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppMSIResourceId: identityId
    msaAppTenantId: tenant().tenantId
    disableLocalAuth: true
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output name string = bot.name
output appId string = identityClientId
