// Opening a provider: each one's SDK is loaded only when a distribution needs it.
import type { KmsConfig, Target } from './types';

export async function openTarget(cfg: KmsConfig): Promise<Target> {
  switch (cfg.provider) {
    case 'awskms': return (await import('./awskms')).AwsTarget.open(cfg);
    case 'gcpckms': return (await import('./gcpckms')).GcpTarget.open(cfg);
    case 'azurekeyvault': return (await import('./azurekeyvault')).AzureTarget.open(cfg);
  }
}
