/**
 * Migration safety: classify the migrations a deploy would apply (classify.py), compare with what
 * the stack already has (baseline.ts), and gate (gate.ts). Entry points for the program (index.ts)
 * and the CLI (`thinlayer plan`, `thinlayer rollback`).
 */
import type { StackConfig } from "../config";
import { appliedMigrations, baselineFromGit, baselineFromOutputs, type PreviousOutputs } from "./baseline";
import { classifyMigrationSet, type MigrationSet } from "./classify";
import { assertMigrationGate, migrationNotes, migrationSafety } from "./gate";
import { decidingOperations, type Baseline, type ClassifiedMigration, type MigrationSafety } from "./model";

export * from "./model";
export { ACK_KEY, assertMigrationGate, migrationGateError, migrationNotes, migrationSafety, pendingOf } from "./gate";
export { appliedMigrations, BASELINE_OUTPUTS, baselineFromGit, baselineFromOutputs, idOfPath, type PreviousOutputs } from "./baseline";
export { classifyMigrations, classifyMigrationSet, CLASSIFIER, pythonCommand, type MigrationSet } from "./classify";
export { formatMigrationSafety } from "./format";
export { rollbackMigrationProblems, rollbackRefusal, type ReleaseMigrations, type RollbackMigrationCheck } from "./rollback-guard";

/** The plan's migration files (paths relative to appDir) and their content hash. */
export type MigrationFiles = MigrationSet;

/** Classifies the plan's migration files (reused while they are unchanged: classifyMigrationSet). */
function classifyPlanMigrations(cfg: Pick<StackConfig, "appDir">, migrations: MigrationFiles, cache = true): Promise<ClassifiedMigration[]> {
    return classifyMigrationSet(cfg.appDir, migrations, { cache });
}

export interface DeployMigrations {
    safety: MigrationSafety;
    /** The `migrations` stack output: ids the database has after this update (undefined: not known). */
    applied: string[] | undefined;
    /** Lines to log (acknowledged migrations run, stale acknowledgements, first deploy). */
    notes: string[];
    /** The `migrationGate` stack output: the verdict the policy pack re-checks (policy/migration-checks.ts). */
    gate: MigrationGateOutput;
}

/** The gate's verdict as a stack output: plain JSON, read by the `migration-gate` policy. */
export interface MigrationGateOutput {
    /** Schema of this object. */
    version: 1;
    baseline: Baseline["kind"];
    /** A rollback pin applies none of the checkout's migrations. */
    pinned: boolean;
    /** The migrations this update applies (none while pinned), with their verdicts. */
    pending: Array<{ id: string; class: string; acknowledged: boolean; blocked: boolean; operations: string[] }>;
}

/** The `migrationGate` output of a safety report. */
export function migrationGateOutput(safety: MigrationSafety, pinned: boolean): MigrationGateOutput {
    return {
        version: 1,
        baseline: safety.baseline.kind,
        pinned,
        pending: pinned
            ? []
            : safety.pending.map((m) => ({
                  id: m.id,
                  class: m.class,
                  acknowledged: m.acknowledged,
                  blocked: m.blocked,
                  operations: decidingOperations(m).map((o) => o.summary),
              })),
    };
}

/**
 * For the program, in preview and up: classifies the checkout's migrations, compares them with the
 * stack's last outputs, and throws the gate's error (a ThinlayerError naming each blocked migration,
 * its operations and the fix) unless every migration to apply is expand or acknowledged. A rollback
 * pin applies none of the checkout's migrations, so it is never gated.
 */
export async function checkDeployMigrations(args: {
    cfg: Pick<StackConfig, "appDir" | "stack" | "acknowledgedMigrations">;
    migrations: MigrationFiles;
    /** The stack's last outputs (BASELINE_OUTPUTS), read with a StackReference to itself; undefined or {} when it never deployed. */
    previous: PreviousOutputs | undefined;
    pinned: boolean;
}): Promise<DeployMigrations> {
    const classified = await classifyPlanMigrations(args.cfg, args.migrations);
    const baseline = baselineFromOutputs(args.previous, { hash: args.migrations.hash, migrations: classified }, `stack ${args.cfg.stack}'s deployed release`);
    const safety = migrationSafety(classified, baseline, args.cfg.acknowledgedMigrations);
    if (!args.pinned) assertMigrationGate(safety, args.cfg.stack);
    return {
        safety,
        applied: appliedMigrations(baseline, args.pinned, classified),
        notes: args.pinned ? [] : migrationNotes(safety, args.cfg.stack),
        gate: migrationGateOutput(safety, args.pinned),
    };
}

/** What `thinlayer plan` compares with. */
export type PlanBaseline = { against: string } | { outputs: PreviousOutputs | undefined; source: string } | { none: true };

/** For `thinlayer plan`: the safety report against a git ref, the stack's outputs, or nothing (every migration listed). */
export async function planMigrationSafety(
    cfg: Pick<StackConfig, "appDir" | "stack" | "acknowledgedMigrations" | "migrationGlobs">,
    migrations: MigrationFiles,
    from: PlanBaseline,
    cache = true,
): Promise<MigrationSafety> {
    const classified = await classifyPlanMigrations(cfg, migrations, cache);
    let baseline: Baseline;
    if ("against" in from) baseline = await baselineFromGit(cfg.appDir, from.against, cfg.migrationGlobs, classified);
    else if ("outputs" in from) baseline = baselineFromOutputs(from.outputs, { hash: migrations.hash, migrations: classified }, from.source);
    else baseline = { kind: "unknown", source: "nothing", reason: "no --against <git ref> or --deployed given" };
    return migrationSafety(classified, baseline, cfg.acknowledgedMigrations);
}
