/** The sign-in providers enabled by the configuration, for the login page. */
import type { Config } from '../config/schema';

export interface ProviderSummary {
  id: string;
  name: string;
}

export function enabledProviders(_config: Config): ProviderSummary[] {
  return [];
}
