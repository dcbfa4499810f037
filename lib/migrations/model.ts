/**
 * Shared types of migration safety: what classify.py prints, and what the plan, the gate and the
 * rollback guard compute from it.
 */

/**
 * expand: the release still serving keeps working on the migrated schema; contract: it breaks;
 * unknown: the classifier cannot tell (RunSQL, RunPython, operations it does not know).
 */
export type MigrationClass = "expand" | "contract" | "unknown";

export interface ClassifiedOperation {
    /** Position in `operations` ("0"); nested database operations of SeparateDatabaseAndState: "1.database_operations.0". */
    index: string;
    /** 1-based line in the file, when known. */
    line: number | null;
    /** Django's class name (AddField), or what the file calls instead. */
    operation: string;
    /** One line: `RemoveField encounter.notes`. */
    summary: string;
    class: MigrationClass;
    /** Why, in terms of the release still serving. */
    reason: string;
    /** The expand/contract way to do the same change (contract and unknown only). */
    fix?: string;
}

export interface ClassifiedMigration {
    /** Django app label (the app directory's name, or its AppConfig.label). */
    app: string;
    /** Migration name: the file name without .py. */
    name: string;
    /** `<app>.<name>`, the form thinlayer:acknowledgedMigrations and the stack outputs use. */
    id: string;
    /** POSIX path relative to appDir. */
    path: string;
    dependencies: Array<[string, string]>;
    /** A squashed migration's replaced migrations ([app, name]). */
    replaces: Array<[string, string]>;
    initial: boolean;
    /** The worst class of its top-level operations (an empty migration is expand). */
    class: MigrationClass;
    operations: ClassifiedOperation[];
}

/** The operations that decided a migration's class: the top-level ones of its class (for a SeparateDatabaseAndState, its nested database operations of that class). */
export function decidingOperations(m: ClassifiedMigration): ClassifiedOperation[] {
    if (m.class === "expand") return [];
    const top = m.operations.filter((o) => !o.index.includes(".") && o.class === m.class);
    return top.flatMap((o) => {
        const nested = m.operations.filter((n) => n.index.startsWith(`${o.index}.`) && n.class === m.class);
        return nested.length ? nested : [o];
    });
}

/**
 * What the deploy is compared with: the migrations the stack's database already has.
 * - deployed: their ids are known (the stack's `migrations` output, or a git ref's files);
 * - fresh: nothing was ever deployed to the stack, so no release serves while migrations run;
 * - unknown: the stack runs a release whose migrations are not recorded: every migration in the
 *   checkout is treated as one the deploy applies.
 */
export type Baseline =
    { kind: "deployed"; source: string; ids: string[] } | { kind: "fresh"; source: string } | { kind: "unknown"; source: string; reason: string };

/** A migration the deploy would apply, with the gate's verdict. */
export interface PendingMigration extends ClassifiedMigration {
    /** contract/unknown and listed in thinlayer:acknowledgedMigrations. */
    acknowledged: boolean;
    /** The gate stops the deploy for it: contract or unknown, not acknowledged, and a release serves. */
    blocked: boolean;
}

export interface MigrationSafety {
    baseline: Baseline;
    /** Every migration in the checkout, classified, in dependency order. */
    migrations: ClassifiedMigration[];
    /** Those the deploy would apply (in the checkout, not in the baseline). */
    pending: PendingMigration[];
    /** Ids of thinlayer:acknowledgedMigrations that are not pending (already applied, or no such migration): safe to remove. */
    staleAcknowledgements: string[];
}
