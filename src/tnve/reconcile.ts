/**
 * Reconciliation: the orchestrator gives the VMs it has on this hypervisor and their run
 * states (e.g. after the agent was down, or from `virsh list --all`); the agent turns the
 * difference into lifecycle calls. Starting a VM that runs already re-asserts its
 * associations (bridge-initiated changes are overridden).
 */
import { z } from 'zod';
import type { Command } from './agent.js';
import { VmDefinitionSchema, VmNameSchema, type VmState } from './model.js';

export const ReconcileSchema = z
  .object({
    vms: z
      .array(
        z
          .object({
            name: VmNameSchema,
            state: z.enum(['running', 'paused', 'shutoff', 'suspended']),
            definition: VmDefinitionSchema.optional(),
          })
          .strict(),
      )
      .max(10000),
    /** Destroy the VMs the agent has and the list does not. */
    prune: z.boolean().default(false),
  })
  .strict();

export type ReconcileRequest = z.output<typeof ReconcileSchema>;

export interface ReconcilePlan {
  readonly name: string;
  readonly commands: Command[];
  /** Why nothing can be done for this VM. */
  readonly error?: string;
}

export function reconcilePlan(
  current: ReadonlyMap<string, VmState>,
  req: ReconcileRequest,
): ReconcilePlan[] {
  const out: ReconcilePlan[] = [];
  const listed = new Set<string>();
  for (const v of req.vms) {
    listed.add(v.name);
    const cur = current.get(v.name);
    const cmds: Command[] = [];
    const name = v.name;
    if (cur === undefined && !v.definition) {
      out.push({ name, commands: [], error: `VM ${name} is unknown here and has no definition` });
      continue;
    }
    if (cur === 'removing') {
      out.push({ name, commands: [], error: `VM ${name} is being removed` });
      continue;
    }
    if (v.definition && (cur === undefined || cur === 'shutoff'))
      cmds.push({ op: 'define', name, def: v.definition });
    const base = cur ?? 'shutoff';
    switch (v.state) {
      case 'running':
      case 'paused':
        if (base === 'incoming') cmds.push({ op: 'migrate-in-commit', name });
        else if (base === 'switched') cmds.push({ op: 'migrate-out-abort', name });
        else if (base === 'outgoing') break;
        else cmds.push({ op: 'start', name });
        if (v.state === 'paused') cmds.push({ op: 'pause', name });
        break;
      case 'suspended':
        if (base === 'incoming') cmds.push({ op: 'migrate-in-abort', name });
        else cmds.push({ op: 'suspend', name });
        break;
      case 'shutoff':
        if (base === 'incoming') cmds.push({ op: 'migrate-in-abort', name });
        else if (base !== 'shutoff') cmds.push({ op: 'stop', name });
        break;
    }
    out.push({ name, commands: cmds });
  }
  if (req.prune) {
    for (const [name, st] of current) {
      if (!listed.has(name) && st !== 'removing')
        out.push({ name, commands: [{ op: 'destroy', name }] });
    }
  }
  return out;
}
