/**
 * The migration gate: which migrations a deploy would apply, and whether it may.
 *
 * During a rolling update the old pods keep serving on the database the new migrations change, and
 * a rollback runs old code on the migrated schema; so a deploy may apply only migrations the release
 * still serving survives (expand). A contract or unknown migration passes only when it is
 * acknowledged for the stack in `thinlayer:acknowledgedMigrations` (see docs: why a config key).
 */
import { PROJECT } from "../config";
import { ThinlayerError } from "../errors";
import { decidingOperations, type Baseline, type ClassifiedMigration, type MigrationSafety, type PendingMigration } from "./model";

/** The acknowledgement key, without the project prefix. */
export const ACK_KEY = "acknowledgedMigrations";

/** The migrations in the checkout that are not in the baseline (a squash counts as applied when all it replaces are). */
export function pendingOf(migrations: readonly ClassifiedMigration[], baseline: Baseline): ClassifiedMigration[] {
    if (baseline.kind !== "deployed") return [...migrations];
    const applied = new Set(baseline.ids);
    const replacedBySquash = new Set<string>();
    for (const m of migrations) {
        if (applied.has(m.id)) for (const [app, name] of m.replaces) replacedBySquash.add(`${app}.${name}`);
    }
    return migrations.filter(
        (m) =>
            !applied.has(m.id) && !replacedBySquash.has(m.id) && !(m.replaces.length > 0 && m.replaces.every(([app, name]) => applied.has(`${app}.${name}`))),
    );
}

/** Classifies, compares with the baseline and applies the acknowledgements; pure. */
export function migrationSafety(migrations: readonly ClassifiedMigration[], baseline: Baseline, acknowledged: readonly string[]): MigrationSafety {
    const acks = new Set(acknowledged);
    const pending: PendingMigration[] = pendingOf(migrations, baseline).map((m) => {
        const ack = m.class !== "expand" && acks.has(m.id);
        return { ...m, acknowledged: ack, blocked: m.class !== "expand" && !ack && baseline.kind !== "fresh" };
    });
    const pendingIds = new Set(pending.map((m) => m.id));
    return { baseline, migrations: [...migrations], pending, staleAcknowledgements: acknowledged.filter((id) => !pendingIds.has(id)) };
}

/**
 * The gate's error, or undefined when the deploy may go ahead. Names each blocked migration, the
 * operations that decided it (with the file line), why the serving release breaks, the
 * expand/contract fix, and the acknowledgement that lets it through.
 */
export function migrationGateError(safety: MigrationSafety, stack: string): ThinlayerError | undefined {
    const blocked = safety.pending.filter((m) => m.blocked);
    if (blocked.length === 0) return undefined;
    const lines: string[] = [];
    const assumed = safety.baseline.kind === "unknown" ? ` (${safety.baseline.reason}: every migration in the checkout counts as new)` : "";
    lines.push(
        `migration gate: ${blocked.length} migration${blocked.length > 1 ? "s" : ""} this deploy would apply ${blocked.length > 1 ? "break" : "breaks"} the release still serving (compared with ${safety.baseline.source}${assumed}).`,
    );
    for (const m of blocked) {
        lines.push("");
        lines.push(`${m.id} (${m.path}) is ${m.class}:`);
        for (const op of decidingOperations(m)) {
            lines.push(`  - ${op.summary}${op.line !== null ? ` (line ${op.line})` : ""}: ${op.reason}.`);
            if (op.fix !== undefined) lines.push(`    Fix: ${op.fix}.`);
        }
    }
    const ids = blocked.map((m) => m.id);
    lines.push("");
    lines.push(
        `Expected: expand migrations only (old and new pods share the database during the rollout, and a rollback runs the old code on the new schema), or the migration acknowledged for this stack.`,
    );
    lines.push(
        `Fix: split each into expand and contract steps as above; or, once the release still serving no longer depends on what it changes (an earlier deploy did the expand step), acknowledge it in Pulumi.${stack}.yaml:`,
    );
    lines.push(`    ${PROJECT}:${ACK_KEY}:`);
    for (const id of ids) lines.push(`      - ${id}`);
    return new ThinlayerError(lines.join("\n"));
}

/** Throws the gate's error, if any. */
export function assertMigrationGate(safety: MigrationSafety, stack: string): void {
    const err = migrationGateError(safety, stack);
    if (err !== undefined) throw err;
}

/** Notes worth logging on a deploy that passes (acknowledged migrations, stale acknowledgements, an unknown baseline). */
export function migrationNotes(safety: MigrationSafety, stack: string): string[] {
    const notes: string[] = [];
    for (const m of safety.pending.filter((p) => p.acknowledged)) {
        notes.push(
            `migration ${m.id} is ${m.class} (${decidingOperations(m)
                .map((o) => o.summary)
                .join(", ")}); it runs because ${PROJECT}:${ACK_KEY} acknowledges it for stack ${stack}`,
        );
    }
    if (safety.baseline.kind === "fresh" && safety.pending.some((m) => m.class !== "expand")) {
        notes.push(
            `no release was deployed to stack ${stack} yet, so no release serves while its migrations run: contract and unknown migrations are not gated on this first deploy`,
        );
    }
    for (const id of safety.staleAcknowledgements) {
        notes.push(
            `${PROJECT}:${ACK_KEY} lists ${id}, which this deploy does not apply (already applied, or no such migration): remove it from Pulumi.${stack}.yaml`,
        );
    }
    return notes;
}
