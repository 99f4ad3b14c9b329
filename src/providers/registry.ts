/** The sign-in providers enabled by the configuration: for the login page and the OAuth routes. */
import type { Config } from '../config/schema';
import { configuredProviders } from './catalog';
import type { Provider } from './types';

export interface ProviderSummary {
  id: string;
  name: string;
}

const byConfig = new WeakMap<Config, Map<string, Provider>>();

function providers(config: Config): Map<string, Provider> {
  let map = byConfig.get(config);
  if (!map) {
    map = new Map(configuredProviders(config).map((p) => [p.id, p]));
    byConfig.set(config, map);
  }
  return map;
}

/** Id and display name of each enabled provider, in button order. */
export function enabledProviders(config: Config): ProviderSummary[] {
  return [...providers(config).values()].map(({ id, name }) => ({ id, name }));
}

/** The enabled provider with this id, or null (unknown ids and disabled providers alike). */
export function findProvider(config: Config, id: string): Provider | null {
  return providers(config).get(id) ?? null;
}
