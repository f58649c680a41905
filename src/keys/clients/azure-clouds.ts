// Azure's clouds, without the SDK: config validation in the main bundle may import this
// file (azure.ts loads the SDK and belongs to the lazily loaded bundles only).

/** Azure AD authority and Key Vault DNS suffix of each cloud, by upper-cased environment name. */
export const AZURE_CLOUDS: Record<string, { authority: string; suffix: string }> = {
  AZUREPUBLICCLOUD: { authority: 'https://login.microsoftonline.com', suffix: 'vault.azure.net' },
  AZURECHINACLOUD: { authority: 'https://login.chinacloudapi.cn', suffix: 'vault.azure.cn' },
  AZUREUSGOVERNMENTCLOUD: { authority: 'https://login.microsoftonline.us', suffix: 'vault.usgovcloudapi.net' },
};
