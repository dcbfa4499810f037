/**
 * Runs the shipped classifier (classify.py, Python's own `ast`, standard library only) over
 * migration files and returns its verdicts. Python is the one parser that reads Python exactly as
 * Django will; python3 is on every machine that deploys a Django app.
 *
 * Compared: django-migration-linter (`lintmigrations`) judges the SQL `sqlmigrate` prints, which
 * needs Django, the app's settings and dependencies, and a database backend on the machine that
 * runs `pulumi preview`; a static read needs only python3.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { inputError, ThinlayerError } from "../errors";
import { sha256 } from "../hashing/digest";
import { cacheDir, identity } from "../hashing/filehash";
import { sourceAsset } from "../root";
import type { ClassifiedMigration } from "./model";

/** The classifier script, shipped next to this module. */
export const CLASSIFIER = sourceAsset("lib", "migrations", "classify.py");

const SCHEMA = 1;

/** The interpreter: THINLAYER_PYTHON, else python3 on PATH. */
export function pythonCommand(env: NodeJS.ProcessEnv = process.env): string {
    return env.THINLAYER_PYTHON !== undefined && env.THINLAYER_PYTHON !== "" ? env.THINLAYER_PYTHON : "python3";
}

/**
 * Classifies the migration files `paths` (POSIX, relative to `root`, e.g. the plan's migration
 * files); files Django would not load as migrations (`__init__.py`, names starting with _ or ~,
 * files outside a migrations directory) are skipped. Returns the migrations in dependency order.
 */
export async function classifyMigrations(root: string, paths: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ClassifiedMigration[]> {
    const python = pythonCommand(env);
    const stdout = await new Promise<string>((resolve, reject) => {
        const child = spawn(python, [CLASSIFIER, "-"], { stdio: ["pipe", "pipe", "pipe"], env: { ...env, PYTHONDONTWRITEBYTECODE: "1" } });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        child.on("error", (e: NodeJS.ErrnoException) => {
            reject(
                e.code === "ENOENT"
                    ? inputError({
                          input: env.THINLAYER_PYTHON ? "THINLAYER_PYTHON" : "python3",
                          value: `${JSON.stringify(python)} (not found)`,
                          allowed: "a Python 3.8+ interpreter, which classifies the Django migrations a deploy applies (lib/migrations/classify.py)",
                          fix: "install python3 (Debian/Ubuntu: apt-get install python3; it needs no packages), or set THINLAYER_PYTHON to an interpreter's path",
                      })
                    : new ThinlayerError(`${python} ${CLASSIFIER}: ${e.message}`),
            );
        });
        child.on("close", (code) => {
            if (code === 0) return resolve(Buffer.concat(out).toString("utf8"));
            const why = Buffer.concat(err).toString("utf8").trim().split("\n").slice(-4).join("\n");
            reject(
                new ThinlayerError(
                    `the migration classifier failed (${python} ${CLASSIFIER}, exit ${code}): ${why}\nFix: it needs Python 3.8 or newer (\`${python} --version\`); set THINLAYER_PYTHON to another interpreter.`,
                ),
            );
        });
        child.stdin.on("error", () => undefined); // a child that died early reports through "close"
        child.stdin.end(JSON.stringify({ root, paths }));
    });
    let doc: { schema?: unknown; migrations?: unknown };
    try {
        doc = JSON.parse(stdout) as typeof doc;
    } catch {
        throw new ThinlayerError(`the migration classifier printed no JSON (${python} ${CLASSIFIER}): ${stdout.slice(0, 200)}`);
    }
    if (doc.schema !== SCHEMA || !Array.isArray(doc.migrations)) {
        throw new ThinlayerError(
            `the migration classifier printed schema ${JSON.stringify(doc.schema)}; expected ${SCHEMA}. Fix: run the classify.py shipped with this thinlayer (${CLASSIFIER}).`,
        );
    }
    return doc.migrations as ClassifiedMigration[];
}

/** A set of migration files and their content hash (the plan's `migrations`: paths, exec bits, sha256s). */
export interface MigrationSet {
    hash: string;
    files: ReadonlyArray<{ path: string }>;
}

/**
 * `classifyMigrations` over a migration set, reused when this very set (by its content hash, with
 * the apps.py files the classifier also reads) was classified before by the same classifier script
 * and interpreter command: a warm `thinlayer plan`,
 * `pulumi preview` or `pulumi up` then starts no Python. One cache file per app directory (under
 * the cache dir of the input snapshots), overwritten when the set changes. `cache: false` or
 * THINLAYER_SNAPSHOTS=0 classifies afresh; a cache file that cannot be read or written is ignored.
 * The interpreter is known by its command (THINLAYER_PYTHON or python3), not its version: after
 * upgrading the Python behind the same command, run `thinlayer plan --no-cache` once (the verdicts
 * come from Python's own parser, so they change only for syntax one version has and another lacks).
 */
export async function classifyMigrationSet(
    root: string,
    set: MigrationSet,
    opts: { cache?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<ClassifiedMigration[]> {
    const env = opts.env ?? process.env;
    const paths = set.files.map((f) => f.path);
    if (opts.cache === false || env.THINLAYER_SNAPSHOTS === "0") return classifyMigrations(root, paths, env);
    const key = sha256(Buffer.from(JSON.stringify([SCHEMA, set.hash, classifierDigest(), pythonCommand(env), appConfigs(root, paths)])));
    // Per app directory and per user (what one user could read is never served to another).
    const file = path.join(cacheDir(), "migrations", `${sha256(Buffer.from(JSON.stringify([path.resolve(root), identity()]))).slice(7, 23)}.json`);
    try {
        const cached = JSON.parse(fs.readFileSync(file, "utf8")) as { key?: unknown; migrations?: unknown };
        if (cached.key === key && Array.isArray(cached.migrations)) return cached.migrations as ClassifiedMigration[];
    } catch {
        // absent or unreadable: classify
    }
    const migrations = await classifyMigrations(root, paths, env);
    try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify({ key, migrations }));
        fs.renameSync(tmp, file);
    } catch {
        // a read-only cache dir: no reuse next time, nothing else lost
    }
    return migrations;
}

/**
 * What else the classifier reads: each migration's app directory's apps.py (an AppConfig `label`
 * renames the app's migration ids). Its content hash, or null where there is none.
 */
function appConfigs(root: string, paths: readonly string[]): Array<[string, string | null]> {
    const dirs = [...new Set(paths.map((p) => path.posix.dirname(path.posix.dirname(p))))].sort();
    return dirs.map((d) => {
        try {
            return [d, sha256(fs.readFileSync(path.join(root, d, "apps.py")))];
        } catch {
            return [d, null];
        }
    });
}

let scriptDigest: string | undefined;
function classifierDigest(): string {
    return (scriptDigest ??= sha256(fs.readFileSync(CLASSIFIER)));
}
