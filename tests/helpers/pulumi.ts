/**
 * The real Pulumi engine for the e2e tests: the `pulumi` CLI and its plugins as scripts/setup.sh
 * provides them (built from Go modules into the tool cache, or already on PATH), a file backend in
 * a temporary directory, a passphrase secrets provider, and no automatic plugin downloads.
 *
 * `PulumiProject` runs the CLI in a copy of this repository (the project the tests deploy), and
 * reads what the engine itself reports: `pulumi preview --json` steps and `--event-log` engine
 * events, never the program's own view of things.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findTool, toolCacheDir } from "./tools";
import { compiledIsFresh } from "../../bin/fresh";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** PATH with the tool cache's bin directory after the ambient PATH (a tool on PATH wins). */
export function toolPath(): string {
    return [process.env.PATH ?? "", path.join(toolCacheDir(), "bin")].filter((p) => p !== "").join(path.delimiter);
}

/**
 * The tools' paths when every one is there (PATH, then the tool cache). Otherwise throws under
 * CI=true (CI installs everything; a missing tool is a broken install), else returns the reason to
 * skip, with the command that installs them.
 */
export function engineToolsOrSkip(...tools: string[]): { tools: Record<string, string> } | { skip: string } {
    const found: Record<string, string> = {};
    const missing = tools.filter((x) => {
        const p = findTool(x);
        if (p) found[x] = p;
        return p === undefined;
    });
    for (const part of missingEngineParts()) if (!missing.includes(part)) missing.push(part);
    if (missing.length === 0) return { tools: found };
    const msg = `missing tools: ${missing.join(", ")} (install: bash scripts/setup.sh)`;
    if (process.env.CI === "true") throw new Error(`${msg}; CI=true, so this is a failure, not a skip`);
    return { skip: msg };
}

/** The plugins the program needs under the real engine, as `pulumi plugin ls` names them. */
export const ENGINE_PLUGINS = [
    { kind: "resource", name: "command" },
    { kind: "resource", name: "kubernetes" },
];

/**
 * What of the engine is missing: the CLI (PATH or the tool cache), the Node.js language host
 * (beside the resolved CLI binary, as Pulumi's releases ship it, or on PATH) and the resource
 * plugins (registered in the tools' PULUMI_HOME). Empty when all is there.
 */
export function missingEngineParts(): string[] {
    const cli = findTool("pulumi");
    if (cli === undefined) return ["pulumi"];
    const missing: string[] = [];
    const host = path.join(path.dirname(fs.realpathSync(cli)), "pulumi-language-nodejs");
    if (!fs.existsSync(host) && findTool("pulumi-language-nodejs") === undefined) missing.push("pulumi-language-nodejs");
    const home = process.env.PULUMI_HOME ?? path.join(toolCacheDir(), "pulumi-home");
    const plugins = path.join(home, "plugins");
    const have = fs.existsSync(plugins) ? fs.readdirSync(plugins) : [];
    for (const p of ENGINE_PLUGINS) {
        if (!have.some((d) => d.startsWith(`${p.kind}-${p.name}-v`) && !d.endsWith(".lock") && !d.endsWith(".partial")))
            missing.push(`pulumi-${p.kind}-${p.name}`);
    }
    return missing;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

/** One engine step of `pulumi preview --json`. */
export interface PreviewStep {
    op: string;
    urn: string;
    diffReasons?: string[];
    replaceReasons?: string[];
    detailedDiff?: Record<string, { kind: string }>;
}

/** An engine event of `--event-log` (the fields the tests read). */
export interface EngineEvent {
    sequence: number;
    timestamp: number;
    resourcePreEvent?: { metadata: StepMetadata };
    resOutputsEvent?: { metadata: StepMetadata };
    resOpFailedEvent?: { metadata: StepMetadata; status: number; steps: number };
    diagnosticEvent?: { urn?: string; message: string; severity: string };
    summaryEvent?: { resourceChanges?: Record<string, number>; durationSeconds?: number };
    cancelEvent?: object;
}

export interface StepMetadata {
    op: string;
    urn: string;
    type: string;
    old?: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> };
    new?: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> };
    diffs?: string[];
}

/** The Pulumi resource name (last URN segment) of a URN. */
export function urnName(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}

/** The resource type of a URN (the last type in its type chain). */
export function urnType(urn: string): string {
    const typeChain = urn.split("::")[2] ?? "";
    return typeChain.slice(typeChain.lastIndexOf("$") + 1);
}

/** Steps that change something, as sorted `op name` strings (same/read steps left out). */
export function changeSet(steps: { op: string; urn: string }[]): string[] {
    return steps
        .filter((s) => s.op !== "same" && s.op !== "read" && s.op !== "refresh")
        .map((s) => `${s.op} ${urnName(s.urn)}`)
        .sort();
}

/** Collapses engine events into one entry per resource step (the resource's final op). */
export function stepsOfEvents(events: EngineEvent[]): { op: string; urn: string; type: string }[] {
    const out = new Map<string, { op: string; urn: string; type: string }>();
    for (const e of events) {
        const m = e.resOutputsEvent?.metadata;
        if (!m) continue;
        const key = `${m.op}:${m.urn}`;
        out.set(key, { op: m.op, urn: m.urn, type: m.type });
    }
    // A replace is reported as create-replacement + replace + delete-replaced; keep one "replace".
    const byUrn = new Map<string, { op: string; urn: string; type: string }[]>();
    for (const s of out.values()) byUrn.set(s.urn, [...(byUrn.get(s.urn) ?? []), s]);
    const steps: { op: string; urn: string; type: string }[] = [];
    for (const list of byUrn.values()) {
        const ops = new Set(list.map((s) => s.op));
        if (ops.has("replace") || ops.has("create-replacement")) steps.push({ ...list[0], op: "replace" });
        else for (const s of list) steps.push(s);
    }
    return steps;
}

/**
 * A copy of this repository (its git-tracked files, plus the working tree's uncommitted edits of
 * them) with node_modules linked, and build/ when it is up to date, in a temporary directory: the
 * project the engine deploys. Tests edit its example app freely.
 */
export function copyProject(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-e2e-project-"));
    const ls = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, encoding: "buffer" });
    if (ls.status !== 0) throw new Error(`git ls-files failed: ${ls.stderr.toString()}`);
    for (const rel of ls.stdout
        .toString("utf8")
        .split("\0")
        .filter((f) => f !== "")) {
        const src = path.join(REPO_ROOT, rel);
        let st: fs.Stats;
        try {
            st = fs.lstatSync(src);
        } catch {
            continue; // deleted in the working tree
        }
        const dst = path.join(dir, rel);
        fs.mkdirSync(path.dirname(dst), { recursive: true });
        if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
        else if (st.isFile()) fs.copyFileSync(src, dst);
    }
    fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
    // The compiled program and CLI, as an install has them (npm ci builds them), when this tree's
    // build is up to date; the stamp is then newer than every copied source, so the entries use it.
    if (compiledIsFresh(REPO_ROOT)) {
        fs.cpSync(path.join(REPO_ROOT, "build"), path.join(dir, "build"), { recursive: true });
        const now = new Date();
        fs.utimesSync(path.join(dir, "build", ".stamp"), now, now);
    }
    return dir;
}

/** The CLI in one project directory with its own file backend and Pulumi home settings. */
export class PulumiProject {
    readonly backendDir: string;
    readonly env: NodeJS.ProcessEnv;
    readonly bin: string;

    constructor(
        readonly dir: string,
        extraEnv: NodeJS.ProcessEnv = {},
    ) {
        const bin = findTool("pulumi");
        if (bin === undefined) throw new Error("pulumi not found on PATH or in the tool cache (install: bash scripts/setup.sh)");
        this.bin = bin;
        this.backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-e2e-backend-"));
        const home = process.env.PULUMI_HOME ?? path.join(toolCacheDir(), "pulumi-home");
        this.env = {
            ...process.env,
            PATH: toolPath(),
            PULUMI_HOME: home,
            PULUMI_BACKEND_URL: `file://${this.backendDir}`,
            PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase-not-a-secret",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
            PULUMI_SKIP_CONFIRMATIONS: "true",
            PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
            PULUMI_ENABLE_LEGACY_DIFF: "false",
            NO_COLOR: "1",
            ...extraEnv,
        };
        delete this.env.CI; // Pulumi changes its output under CI=true; the tests read JSON anyway.
    }

    /** Runs `pulumi <args>` in the project; never throws for a non-zero exit. */
    run(
        args: string[],
        opts: { input?: string; timeoutMs?: number; onSpawn?: (pid: number) => void; onStdout?: (chunk: string) => void } = {},
    ): Promise<RunResult> {
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const child = spawn(this.bin, [...args, "--non-interactive"], { cwd: this.dir, env: this.env, stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => {
                stdout += d.toString();
                opts.onStdout?.(d.toString());
            });
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
            child.on("error", reject);
            if (child.pid !== undefined) opts.onSpawn?.(child.pid);
            child.on("close", (code, signal) => {
                clearTimeout(timer);
                resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: Date.now() - started });
            });
            child.stdin.end(opts.input ?? "");
        });
    }

    /** Runs and throws with the output when the exit code is not 0. */
    async ok(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
        const r = await this.run(args, opts);
        if (r.code !== 0)
            throw new Error(`pulumi ${args.join(" ")} exited ${r.code}\n--- stdout\n${r.stdout.slice(-6000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
        return r;
    }

    /** `pulumi preview --json`: the engine's step list. */
    async preview(
        stack: string,
        extra: string[] = [],
    ): Promise<{ steps: PreviewStep[]; result: RunResult; diagnostics: { message: string; severity: string }[] }> {
        const result = await this.run(["preview", "--stack", stack, "--json", ...extra]);
        let parsed: { steps?: PreviewStep[]; diagnostics?: { message: string; severity: string }[] } = {};
        try {
            parsed = JSON.parse(result.stdout) as typeof parsed;
        } catch {
            if (result.code === 0) throw new Error(`pulumi preview --json printed no JSON:\n${result.stdout.slice(0, 2000)}\n${result.stderr.slice(-2000)}`);
        }
        return { steps: parsed.steps ?? [], result, diagnostics: parsed.diagnostics ?? [] };
    }

    /**
     * `pulumi up --yes --json`: the engine streams its events as JSON lines on stdout; returns
     * them in order. `onEvent` sees each as it arrives (the benchmark times them).
     */
    async up(
        stack: string,
        extra: string[] = [],
        opts: { onSpawn?: (pid: number) => void; timeoutMs?: number; onEvent?: (e: EngineEvent) => void } = {},
    ): Promise<{ result: RunResult; events: EngineEvent[] }> {
        const events: EngineEvent[] = [];
        let carry = "";
        const result = await this.run(["up", "--stack", stack, "--yes", "--skip-preview", "--json", ...extra], {
            ...opts,
            onStdout: (chunk) => {
                const lines = (carry + chunk).split("\n");
                carry = lines.pop() ?? "";
                for (const l of lines) {
                    const e = parseEvent(l);
                    if (e) {
                        events.push(e);
                        opts.onEvent?.(e);
                    }
                }
            },
        });
        const last = parseEvent(carry);
        if (last) events.push(last);
        return { result, events: events.sort((a, b) => a.sequence - b.sequence) };
    }

    /** Stack outputs (`--show-secrets` off: secrets come back as "[secret]"). */
    async outputs(stack: string): Promise<Record<string, unknown>> {
        const r = await this.ok(["stack", "output", "--stack", stack, "--json"]);
        return JSON.parse(r.stdout) as Record<string, unknown>;
    }

    /** Sets config values (`key=value` pairs; `--path` keys allowed). */
    async config(stack: string, values: Record<string, string>, opts: { secret?: boolean; path?: boolean } = {}): Promise<void> {
        for (const [k, v] of Object.entries(values)) {
            await this.ok(["config", "set", "--stack", stack, ...(opts.path ? ["--path"] : []), ...(opts.secret ? ["--secret"] : ["--plaintext"]), k, "--", v]);
        }
    }

    /** Removes the backend directory (the project copy belongs to the caller). */
    cleanup(): void {
        fs.rmSync(this.backendDir, { recursive: true, force: true });
    }
}

/** One engine event of `pulumi up --json` (a JSON object with a sequence number), or undefined. */
function parseEvent(line: string): EngineEvent | undefined {
    const l = line.trim();
    if (!l.startsWith("{")) return undefined;
    try {
        const e = JSON.parse(l) as EngineEvent;
        return typeof e.sequence === "number" ? e : undefined;
    } catch {
        return undefined;
    }
}
