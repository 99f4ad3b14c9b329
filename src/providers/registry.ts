/** The sign-in providers enabled by the configuration: for the login page and the OAuth routes. */
import type { Config } from '../config/schema';
import { configuredProviders } from './catalog';
import type { Provider } from './types';
import { memoize } from '../util/memo';

export interface ProviderSummary {
  id: string;
  name: string;
}

const providers = memoize((config: Config): Map<string, Provider> => new Map(configuredProviders(config).map((p) => [p.id, p])));

/** Id and display name of each enabled provider, in button order. */
export function enabledProviders(config: Config): ProviderSummary[] {
  return [...providers(config).values()].map(({ id, name }) => ({ id, name }));
}

/** The enabled provider with this id, or null (unknown ids and disabled providers alike). */
export function findProvider(config: Config, id: string): Provider | null {
  return providers(config).get(id) ?? null;
}
