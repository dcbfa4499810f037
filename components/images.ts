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
import { BUILDER_CHOICES, BUILDER_CHOICES_TEXT, PLATFORM, TAG, type BuilderChoice } from "../lib/rules";
import { tagExists, type EnsureAction, type EnsureResult, type ImageKind } from "../lib/build/ensure";
import { appTag, baseTag, type ImagePlan } from "../lib/plan";
import { ensureCommandLine, parseEnsureOutput } from "./ensureCommand";
import { check, HASH_RE } from "./problems";

export type RegistryStatus = "exists" | "missing" | "unknown" | "not-checked";

/**
 * What an image component ensures, as `computePlan` gives it (`plan.base`, `plan.app`): the build
 * context, the Dockerfile and the content hash. The tag is derived from the hash here (lib/plan.ts
 * `baseTag`/`appTag`), so hash and tag agree by construction.
 */
export type ImageEntry = Pick<ImagePlan, "image" | "hash" | "contextDir" | "dockerfile">;

interface CommonImageArgs {
    /** Project root: the command runs there (`node bin/thinlayer.js ensure …`). */
    readonly projectDir: string;
    /** This image's plan entry (`plan.base` or `plan.app`): context, Dockerfile (both absolute) and content hash (the trigger of a rebuild). */
    readonly image: ImageEntry;
    /** `host/repo` the image is pushed to, e.g. an ImageRepository's repositoryUrl. */
    readonly repositoryUrl: pulumi.Input<string>;
    /** Target platform. @default "linux/amd64" */
    readonly platform?: string;
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
    /** The base image's content hash (64 hex, `plan.base.hash`), part of the app hash. */
    readonly baseHash: string;
}

/** The tag an image entry is ensured under: deps-<12 hex> or app-<12 hex> of its hash. */
export function imageTag(kind: ImageKind, hash: string): string {
    return kind === "base" ? baseTag(hash) : appTag(hash);
}

function validateCommon(kind: ImageKind, args: CommonImageArgs, p: string[]): void {
    const img = args.image;
    check(p, img.image === kind, "image.image", img.image, `"${kind}" (this component ensures the ${kind} image)`, `pass plan.${kind}`);
    check(p, HASH_RE.test(img.hash), "image.hash", img.hash, "64 lowercase hex (the plan's content hash)", `pass plan.${kind} from computePlan`);
    check(p, PLATFORM.test(args.platform ?? "linux/amd64"), "platform", args.platform, PLATFORM.allowed, "set the platform the cluster's nodes run");
    check(p, (BUILDER_CHOICES as readonly string[]).includes(args.builder ?? "auto"), "builder", args.builder, BUILDER_CHOICES_TEXT, "pick one of those");
    check(
        p,
        path.isAbsolute(args.projectDir) && fs.existsSync(path.join(args.projectDir, "bin", "thinlayer.js")),
        "projectDir",
        args.projectDir,
        "the absolute project root holding bin/thinlayer.js",
        "pass the directory of Pulumi.yaml",
    );
    check(
        p,
        path.isAbsolute(img.contextDir) && fs.existsSync(img.contextDir),
        "image.contextDir",
        img.contextDir,
        "an existing absolute directory",
        "point it at the build context",
    );
    check(
        p,
        path.isAbsolute(img.dockerfile) && fs.existsSync(img.dockerfile),
        "image.dockerfile",
        img.dockerfile,
        "an existing absolute file",
        "point it at the Dockerfile",
    );
    if (args.keepTag !== undefined) {
        const k = args.keepTag;
        const tag = imageTag(kind, img.hash);
        check(
            p,
            TAG.test(k) && k.endsWith(`-${tag}`) && k.length > tag.length + 1,
            "keepTag",
            k,
            `<stack>-${tag}: ${TAG.allowed}`,
            "pass <stack name>-<image tag>, as index.ts does",
        );
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
    tag: string;
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
function ensure(parent: pulumi.Resource, name: string, kind: ImageKind, args: CommonImageArgs, commandLine: pulumi.Output<string>): Ensured {
    const platform = args.platform ?? "linux/amd64";
    const tag = imageTag(kind, args.image.hash);
    const command = new local.Command(
        `${name}-ensure`,
        {
            create: commandLine,
            dir: args.projectDir,
            // Replacement (a new ensure run) exactly when what the image is made of changes.
            triggers: [args.image.hash, args.repositoryUrl, platform],
        },
        { parent },
    );
    // In preview the provider runs nothing: a new or replaced Command has no stdout yet. The result
    // is then unknown (as Pulumi shows it), never a parse error.
    const result = pulumi
        .all([command.stdout, args.repositoryUrl])
        .apply(([stdout, repository]) =>
            pulumi.runtime.isDryRun() && (stdout ?? "").trim() === "" ? undefined : parseEnsureOutput(stdout, { repository, tag }),
        );
    const field = <K extends keyof EnsureResult>(k: K): pulumi.Output<EnsureResult[K]> =>
        result.apply((r): pulumi.Input<EnsureResult[K]> =>
            r === undefined ? (pulumi.output(pulumi.unknown) as pulumi.Output<EnsureResult[K]>) : r[k],
        ) as pulumi.Output<EnsureResult[K]>;

    const checkRegistry = args.checkRegistry ?? pulumi.runtime.isDryRun();
    const registryStatus: pulumi.Output<RegistryStatus> = checkRegistry
        ? pulumi.output(args.repositoryUrl).apply(async (repository) => {
              const status = await tagExists(repository, tag);
              const what =
                  status === "exists"
                      ? "exists: reuse, nothing to build"
                      : status === "missing"
                        ? "missing: `pulumi up` builds and pushes it"
                        : "unknown (no registry access from here): `pulumi up` checks, then reuses or builds";
              await pulumi.log.info(`${kind} image ${repository}:${tag} ${what}`, parent);
              return status;
          })
        : pulumi.output<RegistryStatus>("not-checked");
    return {
        tag,
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
    protected ensureImage(name: string, kind: ImageKind, args: CommonImageArgs, commandLine: pulumi.Output<string>): void {
        const e = ensure(this, name, kind, args, commandLine);
        Object.assign(this, { tag: e.tag, imageRef: e.imageRef, digest: e.digest, action: e.action, registryStatus: e.registryStatus });
        this.registerOutputs({ imageRef: this.imageRef, digest: this.digest, tag: this.tag, action: this.action, registryStatus: this.registryStatus });
    }
}

/** The base image (OS packages + dependencies), ensured in the registry under its deps-… tag. */
export class BaseImage extends EnsuredImage {
    constructor(name: string, args: BaseImageArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:image:BaseImage", name, {}, opts);
        const problems = validateBaseImageArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);
        this.ensureImage(
            name,
            "base",
            args,
            pulumi.output(args.repositoryUrl).apply((repository) =>
                ensureCommandLine(args.projectDir, {
                    image: "base",
                    context: args.image.contextDir,
                    dockerfile: args.image.dockerfile,
                    repository,
                    platform: args.platform ?? "linux/amd64",
                    buildArgs: args.buildArgs ?? {},
                    expectTag: imageTag("base", args.image.hash),
                    builder: args.builder ?? "auto",
                    keepTag: args.keepTag,
                }),
            ),
        );
    }
}

/** The app image: the base plus one thin layer of application code, under its app-… tag. */
export class AppImage extends EnsuredImage {
    constructor(name: string, args: AppImageArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:image:AppImage", name, {}, opts);
        const problems = validateAppImageArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);
        this.ensureImage(
            name,
            "app",
            args,
            pulumi.all([args.repositoryUrl, args.baseRef]).apply(([repository, baseRef]) =>
                ensureCommandLine(args.projectDir, {
                    image: "app",
                    context: args.image.contextDir,
                    dockerfile: args.image.dockerfile,
                    repository,
                    platform: args.platform ?? "linux/amd64",
                    baseRef,
                    baseHash: args.baseHash,
                    expectTag: imageTag("app", args.image.hash),
                    builder: args.builder ?? "auto",
                    keepTag: args.keepTag,
                }),
            ),
        );
    }
}
