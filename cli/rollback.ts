/**
 * `thinlayer rollback`: pin a stack to an earlier release (or clear the pin) in Pulumi.<stack>.yaml,
 * then print the one command that deploys it. Reads the update history with the Pulumi CLI (or
 * from files, for offline use and tests); all decisions are made by lib/release/rollback.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { parseArgs } from "node:util";
import { listStacks, loadStackConfig } from "../lib/config";
import { classifyMigrations, rollbackMigrationProblems, rollbackRefusal, type RollbackMigrationCheck } from "../lib/migrations";
import { computeMigrations } from "../lib/plan";
import { inputError, ThinlayerError } from "../lib/errors";
import { diyCheckpoint, diyHistoryDir, diyHistoryJson, diyUpdates, localBackendDir } from "../lib/release/diy-history";
import { PROJECT_ROOT } from "../lib/root";
import { DIGEST_REF } from "../lib/rules";
import {
    chooseRelease,
    DeployedRelease,
    HistoryEntry,
    parseHistory,
    releaseTimeline,
    releaseFromOutputs,
    releaseSignature,
    settingsChanges,
    settingsOfStackFile,
    stackOutputsFromExport,
    successfulUpdates,
    writePin,
} from "../lib/release/rollback";

const USAGE = `usage: thinlayer rollback --stack <stack> [--steps N | --to <release id|digest> | --image <repo@sha256:…>]
                          [--list] [--dry-run] [--history-file f.json] [--exports-dir dir] [--page-size N]
       thinlayer rollback --stack <stack> --clear [--dry-run]

Pins an earlier release in Pulumi.<stack>.yaml (thinlayer:releaseImage + that release's
thinlayer:settings), so the next \`pulumi up --stack <stack>\` deploys it and builds nothing.

  --steps N         N releases back from the current one (default 1); distinct releases of
                    successful updates, in order of first deployment
  --to X            a release id (rel-…), a digest (sha256:…) or a repo@sha256:… ref from the history
  --image REF       pin this repo@sha256:… directly, without reading history (settings unchanged)
  --clear           remove the pin: build from source again (settings stay as they are in the file)
  --list            print the releases found in the history, then exit
  --dry-run         print what would be written, change nothing
  --force           pin even a release older than a contract migration the database has
  --history-file F  read \`pulumi stack history --json\` output from F instead of running it
  --exports-dir D   read update N's outputs from D/N.json (\`pulumi stack export --version N\`)
  --page-size N     updates of history to read (default 20)
  --project DIR     the Pulumi project (default: this repository)`;

interface Options {
    stack: string;
    projectDir: string;
    steps?: number;
    to?: string;
    image?: string;
    clear: boolean;
    list: boolean;
    dryRun: boolean;
    /** Pin even across applied contract migrations. */
    force?: boolean;
    historyFile?: string;
    exportsDir?: string;
    pageSize: number;
}

/** Where history and per-update outputs come from. */
export interface HistorySource {
    history(): Promise<string>;
    exportOf(version: number): Promise<string>;
}

export async function run(argv: string[]): Promise<number> {
    let values: Record<string, string | boolean | undefined>;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: {
                stack: { type: "string" },
                steps: { type: "string" },
                to: { type: "string" },
                image: { type: "string" },
                clear: { type: "boolean", default: false },
                list: { type: "boolean", default: false },
                "dry-run": { type: "boolean", default: false },
                force: { type: "boolean", default: false },
                "history-file": { type: "string" },
                "exports-dir": { type: "string" },
                "page-size": { type: "string" },
                project: { type: "string" },
                help: { type: "boolean", short: "h", default: false },
            },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        process.stderr.write(`thinlayer rollback: ${(e as Error).message}\n\n${USAGE}\n`);
        return 2;
    }
    if (values.help) {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    const opts = validateOptions(values);
    const source = opts.historyFile !== undefined || opts.exportsDir !== undefined ? fileSource(opts) : pulumiSource(opts);
    const out = await rollback(opts, source);
    process.stdout.write(out);
    return 0;
}

/** Checks flag combinations and values; every error names the flag, the value, what is allowed and the fix. */
function validateOptions(v: Record<string, string | boolean | undefined>): Options {
    const projectDir = path.resolve(typeof v.project === "string" ? v.project : PROJECT_ROOT);
    const stacks = listStacks(projectDir);
    if (typeof v.stack !== "string" || !stacks.includes(v.stack)) {
        throw inputError({
            input: "--stack",
            value: v.stack === undefined ? "(missing)" : JSON.stringify(v.stack),
            allowed: `one of ${stacks.join(", ") || "(no Pulumi.<stack>.yaml found)"}`,
            fix: "pass --stack <stack>, e.g. thinlayer rollback --stack prod --steps 1",
        });
    }
    const chosen = (["steps", "to", "image", "clear"] as const).filter((k) => v[k] !== undefined && v[k] !== false);
    if (chosen.length > 1) {
        throw inputError({
            input: chosen.map((k) => `--${k}`).join(" and "),
            value: "(both given)",
            allowed: "one of --steps, --to, --image, --clear",
            fix: "pass only one",
        });
    }
    const int = (flag: string, raw: unknown, min: number, max: number): number => {
        const n = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!(n >= min && n <= max))
            throw inputError({ input: flag, value: JSON.stringify(raw), allowed: `an integer from ${min} to ${max}`, fix: `e.g. ${flag} ${min}` });
        return n;
    };
    const image = typeof v.image === "string" ? v.image : undefined;
    if (image !== undefined && !DIGEST_REF.test(image)) {
        throw inputError({
            input: "--image",
            value: JSON.stringify(image),
            allowed: "repo@sha256:<64 hex>",
            fix: "copy the ref from the registry or a deploy log (appImageRef output)",
        });
    }
    return {
        stack: v.stack,
        projectDir,
        steps: v.steps !== undefined ? int("--steps", v.steps, 1, 1000) : undefined,
        to: typeof v.to === "string" ? v.to : undefined,
        image,
        clear: v.clear === true,
        list: v.list === true,
        dryRun: v["dry-run"] === true,
        force: v.force === true,
        historyFile: typeof v["history-file"] === "string" ? v["history-file"] : undefined,
        exportsDir: typeof v["exports-dir"] === "string" ? v["exports-dir"] : undefined,
        pageSize: v["page-size"] !== undefined ? int("--page-size", v["page-size"], 1, 500) : 20,
    };
}

/** The whole command, over a history source; returns what to print. Writes the stack file unless --dry-run. */
export async function rollback(opts: Options, source: HistorySource): Promise<string> {
    const file = stackFile(opts.projectDir, opts.stack);
    const rel = path.relative(process.cwd(), file) || file;
    const before = fs.readFileSync(file, "utf8");
    const next = `pulumi up --stack ${opts.stack}`;
    const lines: string[] = [];

    if (opts.clear) {
        const after = writePin(before, null, rel);
        if (after === before) return `${rel}: no rollback pin set; nothing to clear. The stack builds from source.\n`;
        if (!opts.dryRun) fs.writeFileSync(file, after);
        lines.push(`${opts.dryRun ? "would clear" : "cleared"} the rollback pin (thinlayer:releaseImage) in ${rel}.`);
        lines.push(
            `thinlayer:settings stay as they are in ${rel} (the pinned release's settings, if a rollback wrote them): edit them if the source's settings differ.`,
        );
        lines.push(`next: ${next}   (builds from source again)`);
        return lines.join("\n") + "\n";
    }

    if (opts.image !== undefined) {
        const after = writePin(before, { releaseImage: opts.image, settings: settingsOfStackFile(before) }, rel);
        if (!opts.dryRun) fs.writeFileSync(file, after);
        lines.push(`${opts.dryRun ? "would pin" : "pinned"} ${opts.image} in ${rel} (thinlayer:releaseImage); settings unchanged.`);
        lines.push(
            "its migrations hash is not known without the stack's history: no migration Job runs while this pin is set (migrations already applied stay applied).",
        );
        lines.push(`next: ${next}   (no build; \`pulumi preview --stack ${opts.stack}\` fails clearly if the image is no longer in the registry)`);
        return lines.join("\n") + "\n";
    }

    const history = parseHistory(await source.history(), opts.historyFile ?? `pulumi stack history --json --stack ${opts.stack}`);
    const deployed = await deployedReleases(history, source);
    if (opts.list) return formatList(releaseTimeline(deployed, opts.stack));

    const choice = chooseRelease(deployed, history, opts.to !== undefined ? { to: opts.to } : { steps: opts.steps ?? 1 }, opts.stack);
    const { current, target } = choice;
    if (target.appImageRef === current.appImageRef && target.settingsHash === current.settingsHash) {
        throw new ThinlayerError(
            `--to: ${opts.to} is the release the stack runs now (update ${current.version}); nothing to roll back. Fix: pick an earlier release from --list.`,
        );
    }
    const guard = await migrationGuard(opts, current, target);
    if (guard.blocking.length > 0 && opts.force !== true) {
        throw new ThinlayerError(rollbackRefusal(guard, `${target.releaseId ?? target.appImageRef} (update ${target.version})`, opts.stack));
    }
    const after = writePin(before, { releaseImage: target.appImageRef, settings: target.settings, migrationsHash: target.migrationsHash }, rel);
    if (!opts.dryRun) fs.writeFileSync(file, after);

    lines.push(`current:  ${describe(current)}`);
    lines.push(`rollback: ${describe(target)}`);
    for (const f of choice.newerFailures) {
        lines.push(
            `note: update ${f.version} (${f.startTime}) after the current release ended ${JSON.stringify(f.result)}; the current release above is the last successful one.`,
        );
    }
    const changes = settingsChanges(current.settings, target.settings);
    lines.push(changes.length ? `settings change (the ConfigMap is replaced, pods restart with them):\n  ${changes.join("\n  ")}` : "settings: unchanged");
    lines.push("secret settings (thinlayer:secretSettings) are not part of a release: they stay as they are.");
    lines.push(
        `${opts.dryRun ? "would write" : "wrote"} ${rel}: thinlayer:releaseImage = ${target.appImageRef}, thinlayer:settings = the release's ${Object.keys(target.settings).length} settings`,
    );
    lines.push(
        target.migrationsHash !== undefined
            ? `migrations: the Job is keyed on the release's migrations hash ${target.migrationsHash.slice(0, 12)} while pinned (a no-op \`migrate\` in the release's image if that Job is new; migrations are never reversed)`
            : "migrations: the release's migrations hash is not in its outputs: no migration Job runs while pinned",
    );
    for (const b of guard.blocking)
        lines.push(
            `--force: pinned across contract migration ${b.id} (${b.operations.map((o) => o.split(":")[0]).join(", ")}); the pinned code meets the schema it changed`,
        );
    lines.push(...guard.notes);
    lines.push(`next: ${next}   (one Deployment update per process, no build)`);
    lines.push(`undo: thinlayer rollback --stack ${opts.stack} --clear   (build from source again)`);
    return lines.join("\n") + "\n";
}

/**
 * The rollback guard's verdict: contract migrations the database has (the current release's
 * `migrations` output) that the target predates, classified from this checkout's files. The
 * classifier runs only when there is something to classify.
 */
async function migrationGuard(opts: Options, current: DeployedRelease, target: DeployedRelease): Promise<RollbackMigrationCheck> {
    const known = new Set(target.migrations ?? []);
    const newer = current.migrations !== undefined && target.migrations !== undefined && current.migrations.some((m) => !known.has(m));
    if (!newer) return rollbackMigrationProblems(current, target, []);
    const cfg = loadStackConfig(opts.projectDir, opts.stack);
    const files = await computeMigrations(cfg.appDir, cfg.migrationGlobs, { cache: false });
    const classified = await classifyMigrations(
        cfg.appDir,
        files.files.map((f) => f.path),
    );
    return rollbackMigrationProblems(current, target, classified);
}

/**
 * The releases of the successful updates, reading each distinct release's outputs once
 * (updates with the same commit and config share a release; see releaseSignature). Exports are
 * started newest first, at most `concurrency` at a time (each is a backend round trip).
 */
export async function deployedReleases(history: HistoryEntry[], source: HistorySource, concurrency = 4): Promise<DeployedRelease[]> {
    const updates = successfulUpdates(history);
    const firstOf = new Map<string, HistoryEntry>();
    for (const e of updates) if (!firstOf.has(releaseSignature(e))) firstOf.set(releaseSignature(e), e);
    const queue = [...firstOf.entries()];
    const releases = new Map<string, ReturnType<typeof releaseFromOutputs>>();
    const worker = async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
            const [sig, e] = next;
            const text = await source.exportOf(e.version);
            releases.set(sig, releaseFromOutputs(stackOutputsFromExport(text, `export of update ${e.version}`)));
        }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    const out: DeployedRelease[] = [];
    for (const e of updates) {
        const r = releases.get(releaseSignature(e));
        if (r === undefined || typeof r === "string") continue; // an update before the program exported releases
        out.push({
            ...r,
            version: e.version,
            startTime: e.startTime,
            message: e.message,
            gitHead: e.environment["git.head"],
            pinned: (e.config["thinlayer:releaseImage"]?.value ?? "") !== "",
        });
    }
    return out;
}

/** The --list printout: releases newest first, by first deployment, the current one marked. */
function formatList(c: { current: DeployedRelease; timeline: DeployedRelease[] }): string {
    const rows = [...c.timeline]
        .reverse()
        .map(
            (d) =>
                `${(d.releaseId ?? "(no release id)").padEnd(16)}  first deployed in update ${d.version} (${d.startTime})  ${d.appImageRef}${sameRelease(d, c.current) ? "   <- current" : ""}`,
        );
    return `releases, newest first (by first deployment):\n  ${rows.join("\n  ")}\n`;
}

function sameRelease(a: DeployedRelease, b: DeployedRelease): boolean {
    return a.appImageRef === b.appImageRef && a.settingsHash === b.settingsHash;
}

function describe(d: DeployedRelease): string {
    const head = d.gitHead ? ` commit ${d.gitHead.slice(0, 12)}` : "";
    return `${d.releaseId ?? "(release id not recorded)"}  update ${d.version} (${d.startTime})${head}  ${d.appImageRef}${d.message ? `  "${d.message.split("\n")[0]}"` : ""}`;
}

function stackFile(projectDir: string, stack: string): string {
    const f = [`Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`].map((n) => path.join(projectDir, n)).find((p) => fs.existsSync(p));
    if (f === undefined)
        throw inputError({ input: "--stack", value: JSON.stringify(stack), allowed: "a stack with a Pulumi.<stack>.yaml", fix: `pulumi stack init ${stack}` });
    return f;
}

/** History and exports from files (offline, tests). */
export function fileSource(opts: Pick<Options, "historyFile" | "exportsDir" | "stack">): HistorySource {
    return {
        async history() {
            if (opts.historyFile === undefined)
                throw inputError({
                    input: "--history-file",
                    value: "(missing)",
                    allowed: "a file with `pulumi stack history --json` output",
                    fix: "pass it together with --exports-dir",
                });
            return readFileOrFail("--history-file", opts.historyFile);
        },
        async exportOf(version) {
            if (opts.exportsDir === undefined)
                throw inputError({
                    input: "--exports-dir",
                    value: "(missing)",
                    allowed: "a directory with <version>.json stack exports",
                    fix: `pulumi stack export --stack ${opts.stack} --version ${version} --file <dir>/${version}.json`,
                });
            return readFileOrFail("--exports-dir", path.join(opts.exportsDir, `${version}.json`));
        },
    };
}

/**
 * History and exports from the Pulumi CLI, run in the project directory. On a local DIY backend
 * (`file://`, which refuses `stack export --version`), from the backend's own history files
 * instead (lib/release/diy-history.ts).
 */
export function pulumiSource(opts: Pick<Options, "stack" | "projectDir" | "pageSize">): HistorySource {
    const backendDir = localBackendDir(process.env.PULUMI_BACKEND_URL);
    const historyDir = backendDir === undefined ? undefined : diyHistoryDir(backendDir, projectName(opts.projectDir), opts.stack);
    if (historyDir !== undefined) {
        const updates = diyUpdates(historyDir).slice(-opts.pageSize);
        return { history: async () => diyHistoryJson(updates), exportOf: async (version) => diyCheckpoint(updates, version) };
    }
    return {
        history: () => pulumi(["stack", "history", "--json", "--stack", opts.stack, "--page-size", String(opts.pageSize)], opts.projectDir),
        exportOf: (version) => pulumi(["stack", "export", "--stack", opts.stack, "--version", String(version)], opts.projectDir),
    };
}

/** The project name in Pulumi.yaml (the DIY backend's history folder). */
function projectName(projectDir: string): string {
    const text = fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8");
    return /^name:\s*(\S+)/m.exec(text)?.[1] ?? "thinlayer";
}

/** The exact pulumi invocation (exported for the test that checks the command lines). */
export function pulumi(args: string[], cwd: string): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile("pulumi", args, { cwd, maxBuffer: 256 << 20, env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } }, (err, stdout, stderr) => {
            if (err === null) return resolve(stdout);
            const code = (err as NodeJS.ErrnoException).code;
            if (code === "ENOENT") {
                return reject(
                    inputError({
                        input: "pulumi",
                        value: "(not on PATH)",
                        allowed: "the Pulumi CLI",
                        fix: "install it (https://www.pulumi.com/docs/install/), or pass --history-file and --exports-dir",
                    }),
                );
            }
            const why = stderr.trim().split("\n").slice(-3).join(" ").slice(0, 400);
            const diy = /does not provide the ability to export previous deployments/.test(stderr);
            reject(
                new ThinlayerError(
                    `\`pulumi ${args.join(" ")}\` failed: ${why}` +
                        (diy
                            ? `\nFix: this backend keeps no per-update exports (DIY/S3); pin the image directly: thinlayer rollback --stack ${args[args.indexOf("--stack") + 1]} --image <repo@sha256:…> (from the appImageRef output in a deploy log).`
                            : "\nFix: check `pulumi login` and that the stack exists (pulumi stack ls)."),
                ),
            );
        });
    });
}

function readFileOrFail(flag: string, file: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch (e) {
        throw inputError({ input: flag, value: JSON.stringify(file), allowed: "a readable file", fix: (e as Error).message });
    }
}
