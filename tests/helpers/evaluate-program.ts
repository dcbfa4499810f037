/**
 * Subprocess entry: evaluates the whole program (index.ts) once under mocks and prints what it
 * declared as one JSON line on stdout. One process per evaluation, so module caches and Pulumi's
 * global runtime state never leak between state A and state B.
 *
 * Input: env THINLAYER_EVAL = JSON EvalRequest; config comes from PULUMI_CONFIG (set by diff.ts
 * before this process starts, as the Pulumi CLI does).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { programMocks, UNKNOWN, type MockOptions } from "./mocks";

export interface EvalRequest {
    projectDir: string;
    stack: string;
    preview?: boolean;
    mocks?: MockOptions;
}

export interface RecordedResource {
    type: string;
    name: string;
    custom: boolean;
    inputs: Record<string, unknown>;
    /** `type::name` of the parent; undefined for children of the stack. */
    parent?: string;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    customTimeouts?: { create?: string; update?: string; delete?: string };
    dependsOn: string[];
    provider?: string;
}

export interface EvalResult {
    resources: RecordedResource[];
    outputs: Record<string, unknown>;
    logs: string[];
}

function urnKey(urn: string): string {
    const parts = urn.split("::");
    const types = parts[2].split("$");
    return `${types[types.length - 1]}::${parts.slice(3).join("::")}`;
}

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((r) =>
        o.apply((v) => {
            r(v);
            return v;
        }),
    );
}

/** A value with its Outputs resolved; unknown ones (preview) become UNKNOWN. */
async function known(v: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(v)) {
        // isKnown is internal to the SDK but present on every Output; it is what the engine reads.
        if (!(await (v as unknown as { isKnown: Promise<boolean> }).isKnown)) return UNKNOWN;
        return known(await resolve(v));
    }
    if (Array.isArray(v)) return Promise.all(v.map(known));
    if (v !== null && typeof v === "object") return Object.fromEntries(await Promise.all(Object.entries(v).map(async ([k, x]) => [k, await known(x)])));
    return v;
}

async function main(): Promise<void> {
    const req = JSON.parse(process.env.THINLAYER_EVAL ?? "{}") as EvalRequest;
    const inputsByKey = new Map<string, { inputs: Record<string, unknown>; custom: boolean; provider?: string }>();
    const mocks = programMocks({ ...(req.mocks ?? {}), preview: req.preview ?? false });
    await pulumi.runtime.setMocks(
        {
            call: (a) => mocks.call(a),
            async newResource(a) {
                inputsByKey.set(`${a.type}::${a.name}`, { inputs: a.inputs, custom: a.custom ?? false, provider: a.provider });
                return mocks.newResource(a);
            },
        },
        "thinlayer",
        req.stack,
        req.preview ?? false,
        "organization",
    );

    const logs: string[] = [];
    for (const level of ["info", "warn", "error"] as const) {
        const orig = pulumi.log[level];
        (pulumi.log as any)[level] = (msg: string, ...rest: unknown[]) => {
            logs.push(`${level}: ${msg}`);
            return (orig as any)(msg, ...rest);
        };
    }
    const pending: Promise<Omit<RecordedResource, "inputs" | "custom">>[] = [];
    let programOutputs: Record<string, unknown> | undefined;
    await pulumi.runtime.runInPulumiStack(async () => {
        pulumi.runtime.registerStackTransformation((t) => {
            const deps = t.opts.dependsOn;
            pending.push(
                (async () => ({
                    type: t.type,
                    name: t.name,
                    parent: t.opts.parent && !(t.opts.parent instanceof pulumi.runtime.Stack) ? urnKey(await resolve(t.opts.parent.urn)) : undefined,
                    ignoreChanges: t.opts.ignoreChanges ?? [],
                    replaceOnChanges: t.opts.replaceOnChanges ?? [],
                    customTimeouts: (t.opts as pulumi.CustomResourceOptions).customTimeouts,
                    dependsOn: Array.isArray(deps) ? await Promise.all((deps as pulumi.Resource[]).map(async (d) => urnKey(await resolve(d.urn)))) : [],
                }))(),
            );
            return undefined;
        });
        // Pulumi loads the program module and, when it exports a function, awaits it for the outputs.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const program = require(path.join(req.projectDir, "index.ts"));
        programOutputs = typeof program === "function" ? await program() : program;
        return programOutputs;
    });
    await pulumi.runtime.disconnect();
    // Each output on its own, so one unknown (in preview) does not hide the others.
    const shown: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(programOutputs ?? {})) shown[k] = await known(v);
    const meta = await Promise.all(pending);
    const resources: RecordedResource[] = meta.map((m) => {
        const rec = inputsByKey.get(`${m.type}::${m.name}`);
        return { ...m, custom: rec?.custom ?? false, inputs: rec?.inputs ?? {}, provider: rec?.provider };
    });
    process.stdout.write(JSON.stringify({ resources, outputs: shown, logs }) + "\n");
}

if (require.main === module)
    main().then(
        () => process.exit(0),
        (e: unknown) => {
            process.stderr.write(`evaluate-program: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
            process.exit(1);
        },
    );
