/**
 * BaseImage and AppImage: an image that exists in the registry under its content-hash tag.
 *
 * Each is one `@pulumi/command` local.Command running `thinlayer ensure …` (lib/build/ensure.ts): reuse
 * the tag when the registry has it, else build and push it. The content hash, repository and
 * platform are the command's `triggers`, so Pulumi's own diff decides when ensure runs: only when
 * what the image is made of changes. The command runs on `pulumi up` only (a Command's create never
 * runs in preview); in preview the component asks the registry whether the tag exists and logs
 * "reuse" or "build" (or "unknown" without credentials — preview never fails for that).
 * Registry credentials are the CLI's business (ambient AWS credentials / docker config): nothing
 * secret is an input, so nothing secret lands in state.
 */
import * as pulumi from "@pulumi/pulumi";
import { local } from "@pulumi/command";
import * as fs from "node:fs";
import * as path from "node:path";
import { BUILDER_CHOICES, BUILDER_CHOICES_TEXT, type BuilderChoice } from "../lib/rules";
import { tagExists, type EnsureAction, type EnsureResult } from "../lib/build/ensure";
import { ensureCommandLine, parseEnsureOutput } from "./ensureCommand";
import { PLATFORM, TAG } from "../lib/rules";
import { check, HASH_RE } from "./problems";

export type RegistryStatus = "exists" | "missing" | "unknown" | "not-checked";

interface CommonImageArgs {
    /** Project root: the command runs there (`node bin/thinlayer.js ensure …`). */
    readonly projectDir: string;
    /** Build context directory (absolute). */
    readonly contextDir: string;
    /** Dockerfile (absolute). */
    readonly dockerfile: string;
    /** `host/repo` the image is pushed to, e.g. an ImageRepository's repositoryUrl. */
    readonly repositoryUrl: pulumi.Input<string>;
    /** Target platform. @default "linux/amd64" */
    readonly platform?: string;
    /** Content hash from the plan (64 hex): the trigger of a rebuild. */
    readonly hash: string;
    /** Tag from the plan (deps-<12 hex> / app-<12 hex>). */
    readonly tag: string;
    /** Builder for images that need one. @default "auto" */
    readonly builder?: BuilderChoice;
    /** Ask the registry whether the tag exists and log it. @default pulumi.runtime.isDryRun() */
    readonly checkRegistry?: boolean;
    /**
     * A second tag pointed at the same digest after ensure (`--keep-tag`), `<stack>-<tag>` (e.g.
     * `prod-app-0123456789ab`), so the repository's per-stack lifecycle rule keeps the image this
     * stack deploys whatever other stacks push. It changes only with `tag`, so it adds no diff.
     * @default none (no keep tag)
     */
    readonly keepTag?: string;
}

export interface BaseImageArgs extends CommonImageArgs {
    /** Build args (part of the base hash). @default {} */
    readonly buildArgs?: Record<string, string>;
}

export interface AppImageArgs extends CommonImageArgs {
    /** The base image by digest, `host/repo@sha256:…` (a BaseImage's imageRef). */
    readonly baseRef: pulumi.Input<string>;
    /** The base content hash (64 hex), part of the app hash. */
    readonly baseHash: string;
}

function validateCommon(kind: "base" | "app", args: CommonImageArgs, p: string[]): void {
    const prefix = kind === "base" ? "deps-" : "app-";
    check(p, HASH_RE.test(args.hash), "hash", args.hash, "64 lowercase hex (the plan's content hash)", "pass plan.<image>.hash from computePlan");
    check(p, args.tag === `${prefix}${args.hash.slice(0, 12)}`, "tag", args.tag, `${prefix}<first 12 hex of hash>`, "pass the plan's tag with its hash; they come from one computePlan");
    check(p, PLATFORM.test(args.platform ?? "linux/amd64"), "platform", args.platform, PLATFORM.allowed, "set the platform the cluster's nodes run");
    check(p, (BUILDER_CHOICES as readonly string[]).includes(args.builder ?? "auto"), "builder", args.builder, BUILDER_CHOICES_TEXT, "pick one of those");
    check(p, path.isAbsolute(args.projectDir) && fs.existsSync(path.join(args.projectDir, "bin", "thinlayer.js")), "projectDir", args.projectDir, "the absolute project root holding bin/thinlayer.js", "pass the directory of Pulumi.yaml");
    check(p, path.isAbsolute(args.contextDir) && fs.existsSync(args.contextDir), "contextDir", args.contextDir, "an existing absolute directory", "point it at the build context");
    check(p, path.isAbsolute(args.dockerfile) && fs.existsSync(args.dockerfile), "dockerfile", args.dockerfile, "an existing absolute file", "point it at the Dockerfile");
    if (args.keepTag !== undefined) {
        const k = args.keepTag;
        check(p, TAG.test(k) && k.endsWith(`-${args.tag}`) && k.length > args.tag.length + 1, "keepTag", k, `<stack>-${args.tag}: ${TAG.allowed}`, "pass <stack name>-<image tag>, as index.ts does");
    }
}

/** Validates BaseImage args; one message per problem. */
export function validateBaseImageArgs(args: BaseImageArgs): string[] {
    const p: string[] = [];
    validateCommon("base", args, p);
    for (const k of Object.keys(args.buildArgs ?? {})) {
        check(p, /^[A-Za-z_][A-Za-z0-9_]*$/.test(k), "buildArgs", k, "names matching [A-Za-z_][A-Za-z0-9_]*", "rename the build arg");
    }
    return p;
}

/** Validates AppImage args; one message per problem. */
export function validateAppImageArgs(args: AppImageArgs): string[] {
    const p: string[] = [];
    validateCommon("app", args, p);
    check(p, HASH_RE.test(args.baseHash), "baseHash", args.baseHash, "64 lowercase hex (plan.base.hash)", "pass the base image's content hash");
    return p;
}

/** What ensure reported, as Outputs. */
interface Ensured {
    imageRef: pulumi.Output<string>;
    digest: pulumi.Output<string>;
    action: pulumi.Output<EnsureAction>;
    registryStatus: pulumi.Output<RegistryStatus>;
    command: local.Command;
}

/**
 * The local.Command of one image plus its parsed result. `commandLine` is resolved from the
 * repository URL (and base ref) once they are known.
 */
function ensure(parent: pulumi.Resource, name: string, kind: "base" | "app", args: CommonImageArgs, commandLine: pulumi.Output<string>): Ensured {
    const platform = args.platform ?? "linux/amd64";
    const command = new local.Command(`${name}-ensure`, {
        create: commandLine,
        dir: args.projectDir,
        // Replacement (a new ensure run) exactly when what the image is made of changes.
        triggers: [args.hash, args.repositoryUrl, platform],
    }, { parent });
    // In preview the provider runs nothing: a new or replaced Command has no stdout yet. The result
    // is then unknown (as Pulumi shows it), never a parse error.
    const result = pulumi.all([command.stdout, args.repositoryUrl]).apply(([stdout, repository]) =>
        pulumi.runtime.isDryRun() && (stdout ?? "").trim() === "" ? undefined : parseEnsureOutput(stdout, { repository, tag: args.tag }));
    const field = <K extends keyof EnsureResult>(k: K): pulumi.Output<EnsureResult[K]> =>
        result.apply((r): pulumi.Input<EnsureResult[K]> => (r === undefined ? (pulumi.output(pulumi.unknown) as pulumi.Output<EnsureResult[K]>) : r[k])) as pulumi.Output<EnsureResult[K]>;

    const checkRegistry = args.checkRegistry ?? pulumi.runtime.isDryRun();
    const registryStatus: pulumi.Output<RegistryStatus> = checkRegistry
        ? pulumi.output(args.repositoryUrl).apply(async (repository) => {
            const status = await tagExists(repository, args.tag);
            const what = status === "exists" ? "exists: reuse, nothing to build"
                : status === "missing" ? "missing: `pulumi up` builds and pushes it"
                : "unknown (no registry access from here): `pulumi up` checks, then reuses or builds";
            await pulumi.log.info(`${kind} image ${repository}:${args.tag} ${what}`, parent);
            return status;
        })
        : pulumi.output<RegistryStatus>("not-checked");
    return {
        imageRef: field("ref"),
        digest: field("digest"),
        action: field("action"),
        registryStatus,
        command,
    };
}

/** What BaseImage and AppImage share: the outputs of one ensure run, registered once. */
abstract class EnsuredImage extends pulumi.ComponentResource {
    /** `host/repo@sha256:…` */
    public readonly imageRef!: pulumi.Output<string>;
    public readonly digest!: pulumi.Output<string>;
    public readonly tag!: string;
    /** What the ensure run for this tag did: "built" or "reused". */
    public readonly action!: pulumi.Output<EnsureAction>;
    /** Preview-time registry check of the tag ("not-checked" outside preview). */
    public readonly registryStatus!: pulumi.Output<RegistryStatus>;

    /** Declares the ensure Command for `commandLine` and exposes its parsed result. */
    protected ensureImage(name: string, kind: "base" | "app", args: CommonImageArgs, commandLine: pulumi.Output<string>): void {
        const e = ensure(this, name, kind, args, commandLine);
        Object.assign(this, { tag: args.tag, imageRef: e.imageRef, digest: e.digest, action: e.action, registryStatus: e.registryStatus });
        this.registerOutputs({ imageRef: this.imageRef, digest: this.digest, tag: this.tag, action: this.action, registryStatus: this.registryStatus });
    }
}

/** The base image (OS packages + dependencies), ensured in the registry under its deps-… tag. */
export class BaseImage extends EnsuredImage {
    constructor(name: string, args: BaseImageArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:image:BaseImage", name, {}, opts);
        const problems = validateBaseImageArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);
        this.ensureImage(name, "base", args, pulumi.output(args.repositoryUrl).apply((repository) => ensureCommandLine(args.projectDir, {
            image: "base", context: args.contextDir, dockerfile: args.dockerfile, repository,
            platform: args.platform ?? "linux/amd64", buildArgs: args.buildArgs ?? {}, expectTag: args.tag, builder: args.builder ?? "auto", keepTag: args.keepTag,
        })));
    }
}

/** The app image: the base plus one thin layer of application code, under its app-… tag. */
export class AppImage extends EnsuredImage {
    constructor(name: string, args: AppImageArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:image:AppImage", name, {}, opts);
        const problems = validateAppImageArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);
        this.ensureImage(name, "app", args, pulumi.all([args.repositoryUrl, args.baseRef]).apply(([repository, baseRef]) => ensureCommandLine(args.projectDir, {
            image: "app", context: args.contextDir, dockerfile: args.dockerfile, repository,
            platform: args.platform ?? "linux/amd64", baseRef, baseHash: args.baseHash, expectTag: args.tag, builder: args.builder ?? "auto", keepTag: args.keepTag,
        })));
    }
}
