// Opening a provider. Each provider's SDK is loaded only when a distribution needs it
// (in the executable, each provider module is a separate bundle: see scripts/build.mjs),
// so the checks that answer with a UserError run here, in the main bundle.
import { checkCredentials, gcpServiceAccount } from './config';
import type { KmsConfig, Target } from './types';

/** Check a kms config's credentials (a 400 on refusal), then load its provider and connect. */
export async function openTarget(cfg: KmsConfig): Promise<Target> {
  checkCredentials(cfg);
  switch (cfg.provider) {
    case 'awskms':
      return (await import('./awskms')).AwsTarget.open(cfg);
    case 'gcpckms':
      return (await import('./gcpckms')).GcpTarget.open(cfg, await gcpServiceAccount(cfg));
    case 'azurekeyvault':
      return (await import('./azurekeyvault')).AzureTarget.open(cfg);
  }
}
