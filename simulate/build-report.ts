// The report of a finished (or stopped) simulation, assembled from what each part measured.
import { resolve } from 'node:path';
import type { FederationConfig } from '../protocol';
import type { Engine } from '../trainer/engine';
import { type ClientFleet, type FleetOutcome, lastWords } from './client-fleet';
import type { SimulationOptions } from './options';
import type { PreparedData } from './prepare';
import type { ClientReport, RoundReport, SimulationReport } from './report';
import { groupsOf } from './shards';
import type { TextSamplesReport } from './text-samples';

export interface ReportParts {
  readonly started: Date;
  readonly options: SimulationOptions;
  readonly config: FederationConfig;
  readonly engine: Engine;
  readonly prepared: PreparedData;
  readonly fleet: ClientFleet;
  readonly outcome: Pick<FleetOutcome, 'status' | 'error' | 'exits'>;
  readonly rounds: readonly RoundReport[];
  readonly committedRounds: number;
  readonly bytes: number;
  readonly fedAvgBytes: number;
  readonly checkpoint: string | null;
  readonly textSamples: TextSamplesReport | null;
}

function clientReports(prepared: PreparedData, fleet: ClientFleet, exits: FleetOutcome['exits']): ClientReport[] {
  return prepared.ids.map((id, i) => {
    const exit = exits.get(id);
    const fin = fleet.finals.get(id);
    const failed = exit && exit.code !== 0 && exit.code !== 130;
    return {
      id,
      examples: prepared.plan.shards[i].length,
      groups: groupsOf(prepared.plan.shards[i]),
      exitCode: exit?.code ?? null,
      finalDigest: fin?.digest ?? null,
      bytes: fin?.bytes ?? null,
      error: failed ? lastWords(exit) : null,
    };
  });
}

export function buildReport(p: ReportParts): SimulationReport {
  const { options: o, prepared, engine } = p;
  const { data, plan, heldOut } = prepared;
  const agreements = p.rounds.map((r) => r.digestsAgree).filter((a): a is boolean => a !== null);
  const finished = new Date();
  return {
    format: 'fedkseed-simulation',
    version: 1,
    status: p.outcome.status,
    error: p.outcome.error,
    startedAt: p.started.toISOString(),
    finishedAt: finished.toISOString(),
    seconds: (finished.getTime() - p.started.getTime()) / 1000,
    config: {
      federation: p.config,
      clients: o.clients,
      split: plan.mode,
      alpha: plan.mode === 'dirichlet' ? o.alpha : null,
      seqLen: o.seqLen,
      evalBatchSize: o.batchSize,
      heldOutFraction: o.heldOut,
      model: { path: engine.modelPath, identity: engine.model.identity, parameters: engine.params.parameterCount },
      data: {
        path: resolve(o.data),
        train: data.train.length,
        heldOut: data.heldOut.length,
        evalExamples: heldOut.length,
        groups: new Set(data.train.map((e) => e.group)).size,
        unassigned: plan.unassigned,
      },
    },
    clients: clientReports(prepared, p.fleet, p.outcome.exits),
    rounds: [...p.rounds],
    totals: {
      committedRounds: p.committedRounds,
      bytes: p.bytes,
      fedAvgBytes: p.fedAvgBytes,
      replicasIdentical: agreements.length === 0 ? null : agreements.every(Boolean),
    },
    checkpoint: p.checkpoint,
    textSamples: p.textSamples,
  };
}
