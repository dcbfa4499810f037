/**
 * The one mocked layer: Pulumi's engine and providers, kept thin. Each mocked provider returns the
 * inputs as state plus only the outputs the program reads, computed the way the real provider
 * would derive them from the inputs:
 * - aws.ecr.Repository / getRepository: the ECR URL of a fixed account and region;
 * - local.Command: the stdout of `thinlayer ensure --json`. By default a stand-in with a digest that
 *   is a function of (repository, tag) — the tag is the content hash, and the real ensure is
 *   reproducible, so this is the property the program relies on. With `runCommands`, the mock runs
 *   the command line for real (sh -c in the command's dir) and returns its real stdout: the bridge
 *   from the mocked engine to a real registry;
 * - auto-named Kubernetes objects: a name suffix derived from the inputs (the real provider picks a
 *   new random suffix exactly when it replaces the object);
 * - aws.ecr.getImage (ECR pins; other registries are real ones in the tests): a digest from
 *   `registryImages`, else from the name (`repo:tag` or `repo@digest`); listed `absentImages` fail
 *   as each real lookup does for a missing image.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { execFile } from "node:child_process";
import * as crypto from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";

/** How the diff harness shows an output that is unknown (preview). */
export const UNKNOWN = "<unknown>";

export const ACCOUNT = "123456789012";
export const REGION = "eu-west-1";

/** The ECR repository URL the mocked AWS provider reports. */
export function ecrUrl(name: string): string {
    return `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${name}`;
}

/** A deterministic stand-in digest over `parts`. */
export function fakeDigest(...parts: string[]): string {
    return "sha256:" + crypto.createHash("sha256").update(parts.join("\0")).digest("hex");
}

/** The value after `flag` in a shell command line of plain words. */
export function flagValue(commandLine: string, flag: string): string | undefined {
    const words = commandLine.split(/\s+/);
    const i = words.indexOf(flag);
    return i >= 0 ? words[i + 1]?.replace(/^'|'$/g, "") : undefined;
}

/** What `thinlayer ensure --json` would print for this command line, with a stand-in digest. */
export function fakeEnsureStdout(commandLine: string): string {
    const repository = flagValue(commandLine, "--repository") ?? "";
    const tag = flagValue(commandLine, "--expect-tag") ?? "";
    const digest = fakeDigest(repository, tag);
    return JSON.stringify({
        ref: `${repository}@${digest}`,
        repository,
        tag,
        digest,
        action: "built",
        how: "registry",
        bytesUploaded: 0,
        bytesDownloaded: 0,
        seconds: 0,
    });
}

export interface MockOptions {
    /** Model `pulumi preview`: a Command's create runs nothing, so it has no stdout yet. */
    preview?: boolean;
    /** Run each local.Command's `create` for real (sh -c, in its dir) and return its real stdout. */
    runCommands?: boolean;
    /** Extra environment for commands run for real (e.g. DOCKER_CONFIG). */
    commandEnv?: Record<string, string>;
    /** aws.ecr.getImage answers: name -> digest. */
    registryImages?: Record<string, string>;
    /** aws.ecr.getImage names that fail as missing. */
    absentImages?: string[];
    /** The stack's last outputs, as the program's StackReference to its own stack reads them. @default {} (never deployed) */
    stackOutputs?: Record<string, unknown>;
}

function runForReal(create: string, dir: string | undefined, env: Record<string, string>): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile("/bin/sh", ["-c", create], { cwd: dir, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`command failed (${err.message.split("\n")[0]}): ${create}\n${stderr.slice(-4000)}`));
            else resolve(stdout);
        });
    });
}

/** Mocks for the whole program. */
export function programMocks(opts: MockOptions = {}): pulumi.runtime.Mocks {
    return {
        async newResource(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
            const inputs = args.inputs as Record<string, any>;
            const state: Record<string, any> = { ...inputs };
            if (args.type === "aws:ecr/repository:Repository") {
                state.repositoryUrl = ecrUrl(inputs.name);
                state.arn = `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${inputs.name}`;
                state.registryId = ACCOUNT;
            } else if (args.type === "pulumi:pulumi:StackReference") {
                state.outputs = opts.stackOutputs ?? {};
                state.secretOutputNames = [];
            } else if (args.type === "command:local:Command") {
                state.stdout = opts.preview
                    ? ""
                    : opts.runCommands
                      ? await runForReal(inputs.create, inputs.dir, { ...(inputs.environment ?? {}), ...(opts.commandEnv ?? {}) })
                      : fakeEnsureStdout(inputs.create);
                state.stderr = "";
            } else if (
                args.type.startsWith("kubernetes:") &&
                args.custom &&
                !args.type.startsWith("pulumi:providers:") &&
                inputs.metadata?.name === undefined
            ) {
                const suffix = fakeDigest(JSON.stringify(inputs)).slice(7, 15);
                state.metadata = { ...(inputs.metadata ?? {}), name: `${args.name}-${suffix}` };
            }
            return { id: `${args.name}-id`, state };
        },
        call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
            const a = args.inputs as Record<string, any>;
            switch (args.token) {
                case "aws:ecr/getRepository:getRepository":
                    return { name: a.name, repositoryUrl: ecrUrl(a.name), arn: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${a.name}`, registryId: ACCOUNT };
                case "aws:ecr/getImage:getImage": {
                    const repo = `${a.registryId}.dkr.ecr.${REGION}.amazonaws.com/${a.repositoryName}`;
                    const name = a.imageDigest ? `${repo}@${a.imageDigest}` : `${repo}:${a.imageTag}`;
                    if ((opts.absentImages ?? []).includes(name)) {
                        const msg = `reading ECR Image (${a.repositoryName}): operation error ECR: DescribeImages, ImageNotFoundException: The image with imageId {imageTag:'${a.imageTag ?? ""}', imageDigest:'${a.imageDigest ?? ""}'} does not exist within the repository with name '${a.repositoryName}'`;
                        throw Object.assign(new Error(msg), { code: 2, details: msg });
                    }
                    const digest = opts.registryImages?.[name] ?? a.imageDigest ?? fakeDigest(name);
                    return {
                        id: name,
                        registryId: a.registryId,
                        repositoryName: a.repositoryName,
                        imageDigest: digest,
                        imageTags: a.imageTag ? [a.imageTag] : [],
                    };
                }
                default:
                    throw new Error(`unmocked call ${args.token}`);
            }
        },
    };
}

/** A resource as the mocked engine saw it (in-process component tests). */
export interface SeenResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

/**
 * Installs the program mocks in this process and returns the live list of resources the mocked
 * engine is asked to register. For component tests; the whole program is evaluated in a
 * subprocess instead (diff.ts).
 */
export async function installMocks(pulumiModule: typeof pulumi, opts: MockOptions & { preview?: boolean; stack?: string } = {}): Promise<SeenResource[]> {
    const seen: SeenResource[] = [];
    const mocks = programMocks({ ...opts, preview: opts.preview ?? false });
    await pulumiModule.runtime.setMocks(
        {
            call: (a) => mocks.call(a),
            newResource: (a) => {
                seen.push({ type: a.type, name: a.name, inputs: a.inputs });
                return mocks.newResource(a);
            },
        },
        "thinlayer",
        opts.stack ?? "test",
        opts.preview ?? false,
    );
    return seen;
}

/** The value of an Output (test helper; resolves once the mocked engine answered). */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) =>
        o.apply((v) => {
            resolve(v);
            return v;
        }),
    );
}

/** Waits until the mocked engine has seen a resource matching `pred` (registrations are asynchronous). */
export async function seenResource(seen: SeenResource[], pred: (r: SeenResource) => boolean, timeoutMs = 10_000): Promise<SeenResource> {
    const until = Date.now() + timeoutMs;
    for (;;) {
        const r = seen.find(pred);
        if (r) return r;
        if (Date.now() > until)
            throw new Error(`the mocked engine never saw the expected resource; saw: ${seen.map((x) => `${x.type}::${x.name}`).join(", ")}`);
        await new Promise((res) => setTimeout(res, 5));
    }
}
