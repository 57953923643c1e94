/**
 * The libvirt qemu hook (`/etc/libvirt/hooks/qemu <domain> <operation> <sub-operation> <extra>`,
 * the domain XML on stdin): libvirt's operations become tNVE lifecycle calls.
 *
 * What libvirt passes (its docs/hooks.rst; the virHookCall()s in src/qemu/qemu_process.c and
 * qemu_migration.c): `prepare|start|started|reconnect|attach begin -`, `migrate begin -`
 * (destination only), `restore begin -`, `stopped end -` and `release end <extra>` where
 * <extra> is `-` before libvirt 10.5.0 and the shutoff reason since (unknown, shutdown,
 * destroyed, crashed, migrated, saved, failed, "from snapshot", daemon). So the hook decides
 * from the operation and the tNVE's own state of the VM, and takes a shutoff reason only as
 * a refinement when libvirt gives one.
 *
 * | libvirt                        | tNVE                                                  |
 * |--------------------------------|-------------------------------------------------------|
 * | migrate begin (destination)    | migrate-in begin: pre-associate-RR, M=1 (fails -> the |
 * |                                | incoming migration is cancelled)                      |
 * | prepare begin                  | define (pre-associate-RR when configured)             |
 * | restore begin                  | define (a VM the orchestrator suspended stays so)     |
 * | start begin                    | start / resume: Associate; fails -> libvirt does not  |
 * |                                | start the VM (no VM runs unconnected)                 |
 * | started begin                  | check that every TSI is Activated (warns only)        |
 * | stopped end                    | nothing (release follows)                             |
 * | release end, VM incoming       | migrate-in abort (the incoming migration failed)      |
 * | release end, VM outgoing or    | migrate-out commit (De-Associate S=1): the            |
 * | switched                       | orchestrator called migrate-out begin before the      |
 * |                                | migration                                             |
 * | release end, VM suspended      | nothing: the orchestrator suspended it (S=1) for a    |
 * |                                | save; `restore` + `start` resume it                   |
 * | release end, otherwise         | stop (De-Associate): a shutdown, destroy, crash, and  |
 * |                                | before libvirt 10.5.0 also a save or a migration the  |
 * |                                | orchestrator did not announce (the hook cannot tell)  |
 * | release end migrated / saved   | (libvirt >= 10.5.0) migrate-out commit / suspend, as  |
 * |                                | if the orchestrator had announced it                  |
 * | reconnect / attach begin       | reconcile to running (never fails: libvirt would kill |
 * |                                | the running QEMU)                                     |
 *
 * libvirt has no hook at a migration's switchover (the destination resuming), so the
 * destination's `migrate-in commit` (and on different nNVEs the source's `switchover` before
 * it) come from the orchestrator (`splitnve vm migrate-in commit NAME`), e.g. on libvirt's
 * VIR_DOMAIN_EVENT_RESUMED_MIGRATED event. For `migrate` and `restore` libvirt reads the
 * domain XML back from stdout; the hook prints nothing (= unchanged).
 */
import { apiCall, ApiCallError } from '../tnve/client.js';
import { DomainXmlError, parseDomainXml, type DomainInfo } from './domain.js';
import { XmlError } from './xml.js';

export interface HookResult {
  readonly code: number;
  /** What was done, one line per call (for stderr / logs). */
  readonly lines: string[];
}

export interface HookOptions {
  readonly api: string;
  readonly timeoutMs?: number;
}

interface VmState {
  state: string;
  interfaces: { vsiId: string; tsiState: string }[];
}

async function getVm(api: string, name: string): Promise<VmState | undefined> {
  try {
    return await apiCall<VmState>(api, 'GET', `/v1/vms/${encodeURIComponent(name)}`);
  } catch (e) {
    if (e instanceof ApiCallError && e.status === 404) return undefined;
    throw e;
  }
}

/** libvirt's shutoff reasons (`release end <reason>`, libvirt >= 10.5.0; `-` before). */
export const SHUTOFF_REASONS = [
  'unknown',
  'shutdown',
  'destroyed',
  'crashed',
  'migrated',
  'saved',
  'failed',
  'from snapshot',
  'daemon',
] as const;

/**
 * What `release end <extra>` does with a VM in `state`: the tNVE's state decides; a shutoff
 * reason (libvirt >= 10.5.0) refines it where the state cannot know (an unannounced save or
 * migration, an announced migration that did not complete). `-` and `unknown` say nothing.
 */
export function releaseAction(
  state: string,
  extra: string | undefined,
): { op?: string; why: string } {
  const reason =
    extra !== 'unknown' && (SHUTOFF_REASONS as readonly string[]).includes(extra ?? '')
      ? extra
      : undefined;
  const leaving = state === 'outgoing' || state === 'switched';
  if (state === 'incoming') return { op: 'migrate-in/abort', why: 'the incoming migration failed' };
  if (state === 'removing') return { why: 'being removed already' };
  if (state === 'shutoff') return { why: 'shut off already' };
  if (reason === 'migrated') return { op: 'migrate-out/commit', why: 'libvirt: migrated' };
  if (leaving && reason === undefined)
    return { op: 'migrate-out/commit', why: 'migrating out (migrate-out begin)' };
  if (reason === 'saved')
    return state === 'suspended'
      ? { why: 'libvirt: saved, suspended already' }
      : { op: 'suspend', why: 'libvirt: saved' };
  if (state === 'suspended' && reason === undefined)
    return { why: 'suspended by the orchestrator: kept for restore' };
  if (leaving) return { op: 'stop', why: `libvirt: ${reason}, the migration did not complete` };
  return { op: 'stop', why: reason ? `libvirt: ${reason}` : 'stopped (no reason given)' };
}

export async function runHook(
  argv: readonly string[],
  xml: string,
  opts: HookOptions,
): Promise<HookResult> {
  const [domainArg, op, sub, extra] = argv;
  const lines: string[] = [];
  if (!domainArg || !op) {
    return { code: 2, lines: ['usage: libvirt-hook <domain> <operation> <sub-operation> [extra]'] };
  }
  const known = [
    'prepare',
    'start',
    'started',
    'stopped',
    'release',
    'migrate',
    'restore',
    'reconnect',
    'attach',
  ];
  if (!known.includes(op)) return { code: 0, lines: [`${op} ${sub ?? ''}: nothing to do`] };
  if (op === 'stopped') return { code: 0, lines: ['stopped: nothing to do (release follows)'] };

  let dom: DomainInfo | undefined;
  const needXml = op !== 'release' && op !== 'started';
  try {
    if (xml.trim() || needXml) dom = parseDomainXml(xml);
  } catch (e) {
    if (e instanceof XmlError || e instanceof DomainXmlError) {
      // Never break a running VM over bad input; refuse to start one we cannot connect.
      const fatal = op === 'start' || op === 'migrate' || op === 'prepare';
      return { code: fatal ? 1 : 0, lines: [`domain XML of ${domainArg}: ${e.message}`] };
    }
    throw e;
  }
  const name = dom?.name ?? domainArg;
  for (const s of dom?.skipped ?? [])
    lines.push(`interface ${s.mac ?? '?'} (${s.type}) skipped: ${s.why}`);
  const ours = dom ? dom.interfaces.length > 0 : true;
  const enc = encodeURIComponent(name);
  const t = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
  const def = dom ? { interfaces: dom.interfaces } : undefined;
  const call = async (method: string, path: string, body?: unknown): Promise<void> => {
    const r = await apiCall<{ state: string | null; tookMs: number }>(opts.api, method, path, body);
    lines.push(`${method} ${path}: ${r.state ?? 'gone'} (${r.tookMs} ms)`);
  };

  try {
    switch (op) {
      case 'migrate': {
        if (!ours) return { code: 0, lines: [...lines, `${name}: no TSI of ours`] };
        await call('POST', `/v1/vms/${enc}/migrate-in/begin`, { ...def, ...t });
        return { code: 0, lines };
      }
      case 'prepare':
      case 'restore': {
        if (!ours) return { code: 0, lines: [...lines, `${name}: no TSI of ours`] };
        const cur = await getVm(opts.api, name);
        if (cur && cur.state !== 'shutoff') {
          lines.push(`${name} is ${cur.state}: definition kept`);
          return { code: 0, lines };
        }
        await call('PUT', `/v1/vms/${enc}`, { ...def, ...t });
        return { code: 0, lines };
      }
      case 'start': {
        if (!ours) return { code: 0, lines: [...lines, `${name}: no TSI of ours`] };
        let cur = await getVm(opts.api, name);
        if (cur?.state === 'incoming') {
          lines.push(`${name} is migrating in: associated at migrate-in commit`);
          return { code: 0, lines };
        }
        if (!cur || cur.state === 'shutoff') {
          await call('PUT', `/v1/vms/${enc}`, { ...def, ...t });
          cur = await getVm(opts.api, name);
        }
        await call('POST', `/v1/vms/${enc}/${cur?.state === 'suspended' ? 'resume' : 'start'}`, t);
        return { code: 0, lines };
      }
      case 'started': {
        const cur = await getVm(opts.api, name);
        if (!cur) return { code: 0, lines: [...lines, `${name}: no TSI of ours`] };
        const down = cur.interfaces.filter((i) => i.tsiState !== 'Activated');
        if (cur.state === 'running' && down.length > 0)
          lines.push(
            `warning: ${name} runs but ${down.map((i) => i.vsiId).join(', ')} not Activated`,
          );
        else lines.push(`${name}: ${cur.state}`);
        return { code: 0, lines };
      }
      case 'release': {
        const cur = await getVm(opts.api, name);
        if (!cur) return { code: 0, lines: [...lines, `${name}: not known to the tNVE`] };
        const action = releaseAction(cur.state, extra);
        lines.push(`${name} is ${cur.state}: ${action.why}`);
        if (action.op) await call('POST', `/v1/vms/${enc}/${action.op}`, t);
        return { code: 0, lines };
      }
      case 'reconnect':
      case 'attach': {
        if (!ours) return { code: 0, lines: [...lines, `${name}: no TSI of ours`] };
        const r = await apiCall<{
          ok: boolean;
          results: { name: string; ok: boolean; error?: string; state: string }[];
        }>(opts.api, 'POST', '/v1/reconcile', {
          vms: [{ name, state: 'running', definition: def }],
          ...t,
        });
        const x = r.results[0];
        lines.push(
          x?.ok
            ? `${name}: ${x.state}`
            : `warning: reconcile of ${name} failed: ${x?.error ?? 'unknown'}`,
        );
        return { code: 0, lines };
      }
    }
  } catch (e) {
    const msg = e instanceof ApiCallError ? e.message : (e as Error).message;
    lines.push(`${op} ${sub ?? ''} of ${name}: ${msg}`);
    // A failed reconnect must not make libvirt kill a running VM; other failures stop libvirt.
    return {
      code: op === 'reconnect' || op === 'attach' || op === 'release' || op === 'started' ? 0 : 1,
      lines,
    };
  }
  return { code: 0, lines };
}
