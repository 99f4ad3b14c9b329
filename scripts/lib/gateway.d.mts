// Types of gateway.mjs, for the TypeScript e2e harness.
import type { ChildProcess } from 'node:child_process';

export declare const ROOT: string;
export declare function freePort(): Promise<number>;
export declare function wranglerProcessEnv(): NodeJS.ProcessEnv;
export declare function isolatedEnvFile(dir: string): string;
export declare function stopChild(child: ChildProcess): Promise<void>;

export interface Gateway {
  url: string;
  port: number;
  process: ChildProcess;
  logs: () => string;
  stop: () => Promise<void>;
}

export interface GatewayOptions {
  /** Settings passed as `--var NAME:value` (override wrangler.toml's [vars]); the only settings added. */
  vars?: Record<string, string>;
  /** Extra wrangler dev arguments. */
  args?: string[];
  /** The host name of the gateway's URL and PUBLIC_URL (default 127.0.0.1; it listens on 127.0.0.1 either way). */
  host?: '127.0.0.1' | 'localhost';
  /** A folder made by {@link migratedState}: copied as the gateway's state instead of migrating a new one. */
  migrated?: string;
}

export declare function migratedState(): Promise<string>;

export declare function startGateway(options?: GatewayOptions): Promise<Gateway>;
