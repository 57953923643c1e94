/**
 * The libvirt qemu hook (`/etc/libvirt/hooks/qemu <domain> <operation> <sub-operation> <extra>`,
 * the domain XML on stdin): libvirt's operations become tNVE lifecycle calls.
 *
 * | libvirt                        | tNVE                                                  |
 * |--------------------------------|-------------------------------------------------------|
 * | migrate begin (destination)    | migrate-in begin: pre-associate-RR, M=1 (fails -> the |
 * |                                | incoming migration is cancelled)                      |
 * | prepare begin                  | define (pre-associate-RR when configured)             |
 * | restore begin                  | define (the saved VM stays suspended)                 |
 * | start begin                    | start / resume: Associate; fails -> libvirt does not  |
 * |                                | start the VM (no VM runs unconnected)                 |
 * | started begin                  | check that every TSI is Activated (warns only)        |
 * | stopped end                    | nothing (release follows)                             |
 * | release end <reason>           | migrated: migrate-out commit (De-Associate S=1);      |
 * |                                | saved: suspend (Pre-Associate-RR S=1); else: stop     |
 * |                                | (De-Associate); an incoming VM: migrate-in abort      |
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
        const reason = extra && extra !== '-' ? extra : 'unknown';
        if (cur.state === 'incoming') await call('POST', `/v1/vms/${enc}/migrate-in/abort`, t);
        else if (reason === 'migrated') await call('POST', `/v1/vms/${enc}/migrate-out/commit`, t);
        else if (reason === 'saved') await call('POST', `/v1/vms/${enc}/suspend`, t);
        else if (cur.state !== 'shutoff') await call('POST', `/v1/vms/${enc}/stop`, t);
        else lines.push(`${name} is shut off already`);
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
