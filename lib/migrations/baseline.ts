/**
 * Where "the migrations the stack already has" come from:
 * - the stack's outputs: the program exports `migrations`, the ids every release deployed from
 *   source applied (see appliedMigrations), and `pulumi preview` reads its own stack's last outputs;
 * - a git ref (offline, or a pull request against its target branch): the migration files at that
 *   ref, matched by path.
 */
import { execFile } from "node:child_process";
import picomatch from "picomatch";
import { inputError, ThinlayerError } from "../errors";
import { MIGRATION_ID } from "../rules";
import type { Baseline, ClassifiedMigration } from "./model";

/** The stack outputs the baseline is read from (index.ts exports them). */
export const BASELINE_OUTPUTS = ["appHash", "migrationsHash", "migrations"] as const;

export type PreviousOutputs = Partial<Record<(typeof BASELINE_OUTPUTS)[number], unknown>>;

/**
 * The baseline from the stack's last outputs (undefined or {}: the stack never deployed).
 * Without a `migrations` output (a release deployed by a thinlayer that did not export it), an
 * unchanged migrations hash still proves nothing is new; otherwise the baseline is unknown.
 */
export function baselineFromOutputs(
    previous: PreviousOutputs | undefined,
    checkout: { hash: string; migrations: readonly ClassifiedMigration[] },
    source: string,
): Baseline {
    const migrations = previous?.migrations;
    if (Array.isArray(migrations) && migrations.every((m) => typeof m === "string" && MIGRATION_ID.test(m))) {
        return { kind: "deployed", source, ids: [...(migrations as string[])].sort() };
    }
    if (previous === undefined || previous.appHash === undefined || previous.appHash === null) {
        return { kind: "fresh", source };
    }
    if (previous.migrationsHash === checkout.hash) {
        return { kind: "deployed", source: `${source} (same migrations hash)`, ids: checkout.migrations.map((m) => m.id).sort() };
    }
    return {
        kind: "unknown",
        source,
        reason:
            migrations === undefined
                ? "the deployed release does not record its migrations (the `migrations` output is newer than it)"
                : `the \`migrations\` output is not a list of <app>.<name> ids (got ${JSON.stringify(migrations).slice(0, 80)})`,
    };
}

/**
 * The ids the database has after this update: everything it had, plus the checkout's when the
 * update builds from source. A rollback pin migrates nothing new (its Job runs the pinned release's
 * own migrations), and no rollback reverses a migration, so the set only grows.
 */
export function appliedMigrations(baseline: Baseline, pinned: boolean, checkout: readonly ClassifiedMigration[]): string[] | undefined {
    const before = baseline.kind === "deployed" ? baseline.ids : [];
    if (pinned) return baseline.kind === "deployed" ? [...before] : undefined;
    return [...new Set([...before, ...checkout.map((m) => m.id)])].sort();
}

function git(args: string[], cwd: string): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile("git", args, { cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            if (err === null) return resolve(stdout);
            if ((err as NodeJS.ErrnoException).code === "ENOENT") {
                return reject(
                    inputError({
                        input: "git",
                        value: "(not on PATH)",
                        allowed: "git, to read the migrations at --against <ref>",
                        fix: "install git, or plan against the stack's outputs with --deployed",
                    }),
                );
            }
            reject(Object.assign(new Error(stderr.trim() || err.message), { stderr }));
        });
    });
}

/**
 * The baseline at a git ref: the files matching `globs` (relative to appDir, as the plan lists
 * them) at `ref`. A migration counts as applied there if its path exists at the ref.
 */
export async function baselineFromGit(appDir: string, ref: string, globs: readonly string[], checkout: readonly ClassifiedMigration[]): Promise<Baseline> {
    try {
        await git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], appDir);
    } catch {
        throw inputError({
            input: "--against",
            value: JSON.stringify(ref),
            allowed: "a commit, branch or tag of the repository holding appDir",
            fix: "fetch the target branch first (git fetch origin main) and pass e.g. --against origin/main",
        });
    }
    let listing: string;
    try {
        // Paths relative to the working directory (appDir), as ls-tree prints them without --full-name.
        listing = await git(["ls-tree", "-r", "--name-only", ref, "--", "."], appDir);
    } catch (e) {
        throw new ThinlayerError(`git ls-tree ${ref} in ${appDir} failed: ${(e as Error).message}`);
    }
    // The same matcher options as the plan's listFilesByGlobs (lib/hashing/filehash.ts), so both sides list the same files.
    const isMatch = picomatch(globs as string[], { dot: false });
    const atRef = new Set(listing.split("\n").filter((p) => p !== "" && isMatch(p)));
    const ids = checkout.filter((m) => atRef.has(m.path)).map((m) => m.id);
    for (const p of atRef) {
        if (!checkout.some((m) => m.path === p)) {
            const id = idOfPath(p);
            if (id !== undefined) ids.push(id);
        }
    }
    return { kind: "deployed", source: `git ${ref}`, ids: [...new Set(ids)].sort() };
}

/** `<app>.<name>` of a migration path (`records/migrations/0002_x.py`); undefined for files Django does not load as migrations. */
export function idOfPath(p: string): string | undefined {
    const parts = p.split("/");
    const file = parts[parts.length - 1];
    // As classify.py: the last `migrations` directory, else the file's own directory (MIGRATION_MODULES under another name).
    const named = parts.lastIndexOf("migrations", parts.length - 2);
    const at = named >= 0 ? named : parts.length - 2;
    if (!file.endsWith(".py") || file.startsWith("_") || file.startsWith("~") || at < 1) return undefined;
    return `${parts[at - 1]}.${file.slice(0, -3)}`;
}
