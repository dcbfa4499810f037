/**
 * The diff harness: evaluate the whole program for a stack against state A and state B of an app
 * (real files), record every resource's type, name and inputs, and list what differs the way
 * Pulumi's diff sees it — inputs compared after the resource's own `ignoreChanges`, resources
 * created or deleted by name. Each evaluation runs in its own process (evaluate-program.ts).
 *
 * Reused by the delivery tests (rollback pins): import { evaluateProgram, diffEvaluations, ... }.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { PROJECT, readStackFile } from "../../lib/config";
import type { MockOptions } from "./mocks";
import type { EvalRequest, EvalResult, RecordedResource } from "./evaluate-program";

export type { EvalResult, RecordedResource };

export const PROJECT_DIR = path.resolve(__dirname, "..", "..");
export const EXAMPLE_APP = path.join(PROJECT_DIR, "examples", "django-app");

export interface EvaluateOptions {
    stack: string;
    /** `thinlayer:` values (without the prefix) over the stack file's, e.g. { appDir: tmp }. */
    config?: Record<string, unknown>;
    /** Secret `thinlayer:` values (secretSettings, kubeconfig). */
    secrets?: Record<string, unknown>;
    /** Evaluate as `pulumi preview` (isDryRun). @default false */
    preview?: boolean;
    mocks?: MockOptions;
    /** Extra environment for the evaluation process. */
    env?: Record<string, string>;
}

/** A stack's config as the Pulumi CLI would hand it to the program (PULUMI_CONFIG: every value a string). */
export function pulumiConfigEnv(opts: Pick<EvaluateOptions, "stack" | "config" | "secrets">): { PULUMI_CONFIG: string; PULUMI_CONFIG_SECRET_KEYS: string } {
    const values: Record<string, unknown> = { ...readStackFile(PROJECT_DIR, opts.stack), ...(opts.config ?? {}), ...(opts.secrets ?? {}) };
    const config: Record<string, string> = { "aws:region": "eu-west-1" };
    for (const [k, v] of Object.entries(values)) config[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    return {
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(Object.keys(opts.secrets ?? {}).map((k) => `${PROJECT}:${k}`)),
    };
}

/** Evaluates index.ts once under mocks, in a fresh process; rejects with the program's error. */
export function evaluateProgram(opts: EvaluateOptions): Promise<EvalResult> {
    const req: EvalRequest = { projectDir: PROJECT_DIR, stack: opts.stack, preview: opts.preview ?? false, mocks: opts.mocks };
    const env = { ...process.env, ...pulumiConfigEnv(opts), ...(opts.env ?? {}), THINLAYER_EVAL: JSON.stringify(req) };
    return new Promise((resolve, reject) => {
        execFile(
            process.execPath,
            ["--import", "tsx", path.join(__dirname, "evaluate-program.ts")],
            { cwd: PROJECT_DIR, env, maxBuffer: 256 << 20 },
            (err, stdout, stderr) => {
                if (err) return reject(new Error(`program evaluation failed: ${stderr.trim() || err.message}`));
                try {
                    resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "") as EvalResult);
                } catch {
                    reject(new Error(`program evaluation printed no result: ${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
                }
            },
        );
    });
}

export interface ResourceChange {
    kind: "create" | "delete" | "inputs-changed";
    type: string;
    name: string;
    /** Input paths that differ (updates only). */
    paths: string[];
}

/** `type::name` of a resource. */
export function keyOf(r: Pick<RecordedResource, "type" | "name">): string {
    return `${r.type}::${r.name}`;
}

/** Removes a dotted path (`spec.template`, `a[0].b`) from a deep copy of `obj`. */
export function withoutPath(obj: unknown, dotted: string): unknown {
    const copy = structuredClone(obj) as Record<string, unknown>;
    const keys = dotted
        .replace(/\[(\d+)\]/g, ".$1")
        .split(".")
        .filter((k) => k !== "");
    let cur: any = copy;
    for (let i = 0; i < keys.length - 1; i++) {
        if (cur === null || typeof cur !== "object") return copy;
        cur = cur[keys[i]];
    }
    if (cur !== null && typeof cur === "object") delete cur[keys[keys.length - 1]];
    return copy;
}

/** Leaf paths where `a` and `b` differ. */
export function differingPaths(a: unknown, b: unknown, prefix = ""): string[] {
    if (isDeepStrictEqual(a, b)) return [];
    const isObj = (x: unknown) => x !== null && typeof x === "object";
    if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return [prefix || "(root)"];
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) => differingPaths((a as any)[k], (b as any)[k], prefix ? `${prefix}.${k}` : k));
}

/**
 * Which resources Pulumi's diff would act on going from evaluation A (the state) to B (the
 * program): resources only in B are created, only in A deleted; in both, "inputs-changed" when the
 * inputs differ once B's `ignoreChanges` paths are taken out of both. Whether a changed resource
 * is then updated or replaced is the provider's call, which no mock makes: the real engine's ops
 * (an ensure Command and the settings ConfigMap are *replaced*) are asserted in tests/e2e/.
 * Component resources have no inputs and never differ.
 */
export function diffEvaluations(a: EvalResult, b: EvalResult): ResourceChange[] {
    const before = new Map(a.resources.map((r) => [keyOf(r), r]));
    const after = new Map(b.resources.map((r) => [keyOf(r), r]));
    const changes: ResourceChange[] = [];
    for (const [k, r] of after) {
        const old = before.get(k);
        if (!old) {
            changes.push({ kind: "create", type: r.type, name: r.name, paths: [] });
            continue;
        }
        let x: unknown = old.inputs;
        let y: unknown = r.inputs;
        for (const p of r.ignoreChanges) {
            x = withoutPath(x, p);
            y = withoutPath(y, p);
        }
        const paths = differingPaths(x, y);
        if (paths.length) changes.push({ kind: "inputs-changed", type: r.type, name: r.name, paths });
    }
    for (const [k, r] of before) if (!after.has(k)) changes.push({ kind: "delete", type: r.type, name: r.name, paths: [] });
    return changes.sort((p, q) => keyOf(p).localeCompare(keyOf(q)) || p.kind.localeCompare(q.kind));
}

/** The diff as sorted `kind type::name` lines: what the scenario tests compare to an exact set. */
export function changeSet(changes: ResourceChange[]): string[] {
    return changes.map((c) => `${c.kind} ${keyOf(c)}`).sort();
}

/** A temporary copy of the example app (real files); `cleanup` removes it. */
export function copyExampleApp(source = EXAMPLE_APP): { dir: string; cleanup: () => void } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-app-"));
    const dir = path.join(root, "app");
    fs.cpSync(source, dir, { recursive: true, filter: (src) => !/(^|\/)(__pycache__|\.thinlayer-cache)(\/|$)/.test(src) });
    return { dir, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Replaces Pulumi's secret wrappers in recorded inputs with their values (for schema checks). */
export function unwrapSecrets(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v !== null && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (SECRET_SIG in o) return unwrapSecrets(o.value);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
    }
    return v;
}
