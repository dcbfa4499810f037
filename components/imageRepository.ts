/**
 * ImageRepository: one ECR repository, owned ("create") or used by name ("existing").
 *
 * One stack (uat) owns the repositories; the other (prod) looks them up by name, so prod deploys the
 * very digests uat built and never pushes a second copy. Owned repositories are IMMUTABLE (a tag
 * names one digest forever: the content-hash tags make that safe), encrypted at rest, and carry the
 * lifecycle policy of lifecyclePolicy.ts: per stack in `lifecycleStacks`, the newest images that
 * stack deployed (its `<stack>-<tag>` keep tags) are kept, whatever other stacks push.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { RepositoryMode } from "../lib/config";
import { isEcrRegistry } from "../lib/oci/reference";
import { repositoryNameRule } from "../lib/rules";
import { buildLifecyclePolicy } from "./lifecyclePolicy";
import { check, intIn } from "./problems";

export interface ImageRepositoryArgs {
    /** Repository name, e.g. "thinlayer/app". */
    readonly repositoryName: string;
    /** "create": this stack owns the repository; "existing": look it up by name. @default "create" */
    readonly mode?: RepositoryMode;
    /** Prefix of the tags this repository's images carry ("app-" or "deps-"); the lifecycle keeps the newest `keepTaggedImages` of them. */
    readonly tagPrefix: string;
    /** Tagged images with `tagPrefix` the lifecycle keeps: the rollback window. @default 50 */
    readonly keepTaggedImages?: number;
    /**
     * Stacks that deploy from this repository. Each deploy points a keep tag `<stack>-<tagPrefix>…`
     * at its image (`ensure --keep-tag`), and the lifecycle keeps the newest `keepTaggedImages`
     * images of each stack ahead of the shared count rule, so an image a stack runs is never expired
     * by other stacks' pushes (lifecyclePolicy.ts). At most 4 DNS labels. @default [] (shared rule only)
     */
    readonly lifecycleStacks?: readonly string[];
    /** Days after which untagged images expire. @default 1 */
    readonly untaggedExpiryDays?: number;
    /** ECR basic scanning on push. @default true */
    readonly scanOnPush?: boolean;
    /** Encryption at rest: "AES256" (S3-managed keys) or "KMS". @default "AES256" */
    readonly encryptionType?: "AES256" | "KMS";
    /** KMS key ARN when encryptionType is "KMS". @default - the AWS-managed ECR key */
    readonly kmsKey?: pulumi.Input<string>;
    /** Tags on the repository. @default {} */
    readonly tags?: Record<string, string>;
}

/** Validates plain args; returns one message per problem (empty when valid). */
export function validateImageRepositoryArgs(args: ImageRepositoryArgs): string[] {
    const p: string[] = [];
    const mode = args.mode ?? "create";
    const ecrName = repositoryNameRule(true);
    check(p, ecrName.test(args.repositoryName), "repositoryName", args.repositoryName, ecrName.allowed, "rename the repository, e.g. thinlayer/app");
    check(
        p,
        mode === "create" || mode === "existing",
        "mode",
        mode,
        "create | existing",
        "use create in the stack that owns the repository, existing elsewhere",
    );
    check(
        p,
        /^[A-Za-z0-9_.-]+$/.test(args.tagPrefix),
        "tagPrefix",
        args.tagPrefix,
        "a non-empty tag prefix such as app- or deps-",
        "pass the prefix the image tags start with",
    );
    check(
        p,
        intIn(args.keepTaggedImages ?? 50, 1, 10000),
        "keepTaggedImages",
        args.keepTaggedImages,
        "an integer from 1 to 10000",
        "keep at least the releases you may roll back to",
    );
    const stacks = args.lifecycleStacks ?? [];
    check(
        p,
        stacks.length <= 4 && new Set(stacks).size === stacks.length && stacks.every((x) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(x)),
        "lifecycleStacks",
        stacks,
        "at most 4 distinct stack names, each a DNS label (lowercase letters, digits, -)",
        'list the stacks that deploy, e.g. ["uat", "prod"]',
    );
    check(
        p,
        intIn(args.untaggedExpiryDays ?? 1, 1, 3650),
        "untaggedExpiryDays",
        args.untaggedExpiryDays,
        "an integer from 1 to 3650",
        "use a whole number of days",
    );
    check(
        p,
        args.kmsKey === undefined || args.encryptionType === "KMS",
        "kmsKey",
        "(set)",
        'kmsKey only with encryptionType "KMS"',
        'set encryptionType: "KMS" or drop kmsKey',
    );
    return p;
}

export class ImageRepository extends pulumi.ComponentResource {
    /** `<registry host>/<name>`, what image refs start with. */
    public readonly repositoryUrl: pulumi.Output<string>;
    /** The repository name. */
    public readonly repositoryName: string;
    /** The owned repository (mode "create"), else undefined. */
    public readonly repository?: aws.ecr.Repository;

    constructor(name: string, args: ImageRepositoryArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:ecr:ImageRepository", name, {}, opts);
        const problems = validateImageRepositoryArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);

        const mode = args.mode ?? "create";
        const encryptionType = args.encryptionType ?? "AES256";
        this.repositoryName = args.repositoryName;

        if (mode === "existing") {
            // Owned by another stack: read it, never manage it (no lifecycle here either: the owner's applies).
            const found = aws.ecr.getRepositoryOutput({ name: args.repositoryName }, { parent: this });
            this.repositoryUrl = found.repositoryUrl;
        } else {
            this.repository = new aws.ecr.Repository(
                `${name}-repository`,
                {
                    name: args.repositoryName,
                    imageTagMutability: "IMMUTABLE",
                    encryptionConfigurations: [{ encryptionType, kmsKey: args.kmsKey }],
                    imageScanningConfiguration: { scanOnPush: args.scanOnPush ?? true },
                    tags: args.tags ?? {},
                },
                { parent: this },
            );
            const policy = buildLifecyclePolicy({
                untaggedDays: args.untaggedExpiryDays ?? 1,
                keep: [{ tagPrefix: args.tagPrefix, count: args.keepTaggedImages ?? 50 }],
                stacks: args.lifecycleStacks ?? [],
            });
            new aws.ecr.LifecyclePolicy(
                `${name}-lifecycle`,
                {
                    repository: this.repository.name,
                    policy: JSON.stringify(policy),
                },
                { parent: this },
            );
            this.repositoryUrl = this.repository.repositoryUrl;
        }
        this.registerOutputs({ repositoryUrl: this.repositoryUrl });
    }
}

/** True when `registry` is "" (the account's ECR) or an ECR host: repositories are then ECR resources (lib/oci/reference.ts). */
export { isEcrRegistry };
