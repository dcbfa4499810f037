/**
 * The rollback guard: a rollback deploys older code and reverses no migration, so the older code
 * meets every migration applied since. A contract migration among them (a dropped or renamed
 * column, a NOT NULL column the old code does not write) makes the rolled-back release fail.
 */
import { decidingOperations, type ClassifiedMigration } from "./model";

/** The migration facts of a release, from its stack outputs. */
export interface ReleaseMigrations {
    /** The `migrations` output: ids applied when the release was deployed. */
    migrations?: string[];
    migrationsHash?: string;
}

export interface RollbackMigrationCheck {
    /** Contract migrations the database has that the target release predates. */
    blocking: Array<{ id: string; path: string; operations: string[] }>;
    /** Lines to print: migrations the target predates whose class is unknown, or why the check could not run. */
    notes: string[];
}

/** Compares what the database has (the current release's `migrations`) with what the target knew. Pure. */
export function rollbackMigrationProblems(
    current: ReleaseMigrations,
    target: ReleaseMigrations,
    checkout: readonly ClassifiedMigration[],
): RollbackMigrationCheck {
    const out: RollbackMigrationCheck = { blocking: [], notes: [] };
    if (current.migrationsHash !== undefined && current.migrationsHash === target.migrationsHash) return out;
    if (current.migrations === undefined || target.migrations === undefined) {
        const which = current.migrations === undefined ? "the current release's" : "the target release's";
        out.notes.push(
            `migrations: not checked: ${which} outputs do not record its migrations (deployed before thinlayer exported \`migrations\`); check that no migration applied since the target drops or renames what its code uses`,
        );
        return out;
    }
    const known = new Set(target.migrations);
    const byId = new Map(checkout.map((m) => [m.id, m]));
    for (const id of current.migrations.filter((m) => !known.has(m))) {
        const m = byId.get(id);
        if (m === undefined) {
            out.notes.push(
                `migrations: ${id} was applied after the target release and is not in this checkout, so its class is unknown: check it before deploying the pin`,
            );
        } else if (m.class === "contract") {
            out.blocking.push({ id, path: m.path, operations: decidingOperations(m).map((o) => `${o.summary}: ${o.reason}`) });
        } else if (m.class === "unknown") {
            out.notes.push(
                `migrations: ${id} (${decidingOperations(m)
                    .map((o) => o.summary)
                    .join(", ")}) was applied after the target release and cannot be classified: check that the target's code survives it`,
            );
        }
    }
    return out;
}

/** The refusal `thinlayer rollback` prints without --force. */
export function rollbackRefusal(check: RollbackMigrationCheck, target: string, stack: string): string {
    const lines = [
        `refusing to pin ${target}: the stack's database has ${check.blocking.length} contract migration${check.blocking.length > 1 ? "s" : ""} applied after that release, and a rollback reverses none:`,
    ];
    for (const b of check.blocking) {
        lines.push(`  - ${b.id} (${b.path})`);
        for (const op of b.operations) lines.push(`      ${op}`);
    }
    lines.push("The older code would meet a schema it does not know (a column it selects is gone, a column it does not write is NOT NULL) and fail.");
    lines.push(
        `Fix: roll forward instead (revert the change in git and \`pulumi up --stack ${stack}\`); or roll back to a release deployed after ${check.blocking.map((b) => b.id).join(", ")} (thinlayer rollback --stack ${stack} --list); or, if you reversed the migration yourself (python manage.py migrate <app> <previous>) or know the older code does not touch what it changed, rerun with --force.`,
    );
    return lines.join("\n");
}
