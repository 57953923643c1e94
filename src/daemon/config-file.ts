/**
 * Configuration loading shared by both daemons: a JSON file (--config), the flags both have
 * laid over it, and validation whose error names every bad field.
 */
import { readFileSync } from 'node:fs';
import type { ZodType } from 'zod';

/** Flags both daemons take, laid over the file by `applyCommonFlags`. */
export interface CommonFlags {
  config?: string;
  stateDir?: string;
  api?: string;
  profile?: string;
  logLevel?: string;
  evb?: Record<string, number>;
  /** --auth MODE, --key-dir DIR */
  auth?: string;
  keyDir?: string;
}

/** The configuration file as an object ({} without one); errors name the file. */
export function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`config ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`config ${path}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** Lays the common flags over `merged` (a copy of `file`), section by section. */
export function applyCommonFlags(
  merged: Record<string, unknown>,
  file: Record<string, unknown>,
  flags: CommonFlags,
): void {
  if (flags.stateDir !== undefined) merged.stateDir = flags.stateDir;
  if (flags.api !== undefined) merged.api = flags.api;
  if (flags.profile !== undefined) merged.profile = flags.profile;
  if (flags.logLevel !== undefined) merged.logLevel = flags.logLevel;
  if (flags.evb) merged.evb = { ...((file.evb as object) ?? {}), ...flags.evb };
  if (flags.auth !== undefined || flags.keyDir !== undefined) {
    merged.auth = {
      ...((file.auth as object) ?? {}),
      ...(flags.auth !== undefined ? { mode: flags.auth } : {}),
      ...(flags.keyDir !== undefined ? { keyDir: flags.keyDir } : {}),
    };
  }
}

/** Validates; the error lists every bad field by its path. */
export function validateConfig<T>(schema: ZodType<T>, merged: unknown): T {
  const r = schema.safeParse(merged);
  if (r.success) return r.data;
  throw new Error(
    `invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
  );
}
