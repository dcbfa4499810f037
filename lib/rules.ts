/**
 * One source for the rules a value must follow, wherever it enters: the stack config parser
 * (lib/config.ts), the components' validators and the CLI all ask these, so the offline plan and
 * `pulumi up` accept exactly the same values (copies drift, and drift is a plan that passes and an
 * update that fails). Each rule is a test plus the sentence an error shows as "expected …".
 * (Which registry is ECR is lib/oci/reference.ts `parseEcrHost` / `isEcrRegistry`: host parsing
 * belongs with references.)
 */
export interface Rule {
    test(value: string): boolean;
    /** What is allowed, for the error's "expected …". */
    allowed: string;
}

/** A DNS-1123 label without its length limit (lowercase letters, digits, '-', alphanumeric ends). */
const LABEL_CHARS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A Kubernetes DNS label: what namespace names, and the names Kubernetes recommends for Deployments, are. */
export const DNS_LABEL: Rule = {
    test: (v) => LABEL_CHARS.test(v) && v.length <= 63,
    allowed: "a DNS-1123 label (lowercase, digits, -; at most 63)",
};

/** The name the program gives its Release (index.ts): it prefixes every workload name. */
export const RELEASE_NAME = "app";

/** Worker names the Release uses for its own components. */
const RESERVED_WORKER_NAMES: readonly string[] = ["web", "migrate"];

/**
 * Worker names under a Release named `releaseName`. The name reaches Kubernetes in two places:
 * the Deployment `<release>-worker-<worker>`, which Kubernetes recommends be a DNS label (63) because
 * pod host names derive from it (ReplicaSet and pod names add their own suffixes, and the API
 * server shortens a generated pod name's base to fit 63), and the label value `worker-<worker>`
 * (63). The Deployment name is the tighter of the two.
 */
export function workerNameRule(releaseName: string = RELEASE_NAME): Rule {
    const max = Math.min(63 - `${releaseName}-worker-`.length, 63 - "worker-".length);
    return {
        test: (v) => LABEL_CHARS.test(v) && v.length <= max && !RESERVED_WORKER_NAMES.includes(v),
        allowed: `a DNS-1123 label of at most ${max} characters (the Deployment ${releaseName}-worker-<name> is a DNS label), other than the reserved web and migrate`,
    };
}

/** ECR's repository name rule (CreateRepository): 2 to 256 characters, lowercase components joined by one of . _ - and by /. */
const ECR_REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** The OCI distribution spec's repository path (also `__` and runs of `-`). */
const OCI_REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Repository names: ECR's rule on ECR (2..256), the OCI distribution rule elsewhere (at most 255 with the host). */
export function repositoryNameRule(ecr: boolean): Rule {
    return ecr
        ? {
              test: (v) => ECR_REPOSITORY.test(v) && v.length >= 2 && v.length <= 256,
              allowed: "an ECR repository name: 2-256 lowercase letters, digits, . _ - separated by /",
          }
        : { test: (v) => OCI_REPOSITORY.test(v) && v.length <= 255, allowed: "a repository path: lowercase letters and digits, separated by . _ __ - or /" };
}

/** Image tags (the OCI distribution grammar): 1 to 128 of letters, digits, _ . -, not starting with . or -. */
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const TAG: Rule = {
    test: (v) => TAG_PATTERN.test(v),
    allowed: "a tag of 1..128 characters [A-Za-z0-9_.-], not starting with . or -",
};

/** Image platforms as the OCI image index spells them: os/arch[/variant] (linux/amd64, linux/arm64/v8). */
export const PLATFORM: Rule = {
    test: (v) => /^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/.test(v),
    allowed: "os/arch[/variant], e.g. linux/amd64 or linux/arm64",
};

/** Kubernetes resource quantities in the forms thinlayer accepts (a number and an optional suffix). */
export const QUANTITY: Rule = {
    test: (v) => /^\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.test(v),
    allowed: "a Kubernetes quantity such as 250m, 1, 512Mi, 1Gi",
};

/** An image digest as a registry gives it (sha256 only, lowercase hex). */
export const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** `repository@sha256:<64 hex>` (the repository may carry a host and a :tag): an image pinned by digest. Groups: repository, digest. */
export const DIGEST_REF = /^([^@\s]+)@(sha256:[a-f0-9]{64})$/;

/** `<app label>.<migration name>`: what an acknowledgement and the `migrations` output name (the config parser, the outputs and the gate). */
export const MIGRATION_ID = /^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_]+$/;

/** The image builders thinlayer drives, in the order `auto` tries them (lib/build/builders.ts). */
export type BuilderName = "buildx" | "docker" | "podman" | "buildah";
export const BUILDER_ORDER: readonly BuilderName[] = ["buildx", "docker", "podman", "buildah"];
/** `--builder` and `thinlayer:builder` values: `auto` or a builder name. */
export type BuilderChoice = "auto" | BuilderName;
export const BUILDER_CHOICES: readonly BuilderChoice[] = ["auto", ...BUILDER_ORDER];
/** "auto, buildx, docker, podman or buildah" */
export const BUILDER_CHOICES_TEXT = `${BUILDER_CHOICES.slice(0, -1).join(", ")} or ${BUILDER_CHOICES[BUILDER_CHOICES.length - 1]}`;
