/**
 * One table of good and bad values, run through every entry point that checks them: the stack
 * config parser (what `thinlayer plan` and the program read), the components' validators (what
 * `pulumi up` checks) and the CLI's parsers (what `thinlayer ensure` checks). Each value must be
 * accepted everywhere or rejected everywhere, so an offline plan never passes what an update fails.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { loadProjectSchema, parseStackConfig } from "../../lib/config";
import { parseEnsureArgv } from "../../cli/ensure";
import { parseRepository } from "../../lib/oci/reference";
import { validateImageRepositoryArgs } from "../../components/imageRepository";
import { validateBaseImageArgs } from "../../components/images";
import { validateReleaseArgs } from "../../components/release";
import { validateKubernetesTargetArgs } from "../../components/cluster";
import { classifyPin } from "../../components/releasePin";
import { parseImageRef } from "../../lib/oci/reference";
import { RELEASE_NAME } from "../../lib/rules";

const ROOT = path.resolve(__dirname, "..", "..");
const APP = path.join(ROOT, "examples", "django-app");
const H = "a".repeat(64);
const schema = loadProjectSchema(ROOT);

/** Whether the config parser accepts `raw` (any problem at all is a rejection). */
function config(raw: Record<string, unknown>): boolean {
    try {
        parseStackConfig(raw, schema, { projectDir: ROOT, stack: "t" });
        return true;
    } catch {
        return false;
    }
}
const accepts = (f: () => unknown): boolean => {
    try {
        f();
        return true;
    } catch {
        return false;
    }
};
const release = (extra: Record<string, unknown>) =>
    validateReleaseArgs(RELEASE_NAME, { namespace: "ns", image: `r@sha256:${H}`, settingsHash: H, ...extra }).length === 0;
const ensureArgv = (extra: string[]) =>
    accepts(() =>
        parseEnsureArgv([
            "base",
            "--context",
            APP,
            "--dockerfile",
            "Dockerfile.base",
            "--repository",
            "127.0.0.1:5000/t/b",
            "--expect-tag",
            "deps-0123456789ab",
            ...extra,
        ]),
    );

type EntryPoints = Record<string, (v: string) => boolean>;
const ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const TABLE: { rule: string; entry: EntryPoints; good: string[]; bad: string[] }[] = [
    {
        rule: "worker names",
        entry: {
            "config thinlayer:workers": (v) => config({ workers: [`${v}=celery -A emr worker`] }),
            "Release workers": (v) => release({ workers: [{ name: v, command: "celery -A emr worker" }] }),
        },
        good: ["celery", "a", "beat-2", "x".repeat(41), "x".repeat(52)],
        bad: ["x".repeat(53), "web", "migrate", "Celery", "-a", "a-", "a_b", "a.b"],
    },
    {
        rule: "repository names on ECR",
        entry: {
            "config thinlayer:appRepository (ECR)": (v) => config({ appRepository: v }),
            "config thinlayer:baseRepository (ECR host)": (v) => config({ registry: ECR, baseRepository: v }),
            "ImageRepository repositoryName": (v) => validateImageRepositoryArgs({ repositoryName: v, tagPrefix: "app-" }).length === 0,
            "ensure --repository (ECR host)": (v) => accepts(() => parseRepository(`${ECR}/${v}`)),
        },
        good: ["ab", "thinlayer/app", "a.b_c-d/e", "x".repeat(256)],
        bad: ["a", "A/b", "a__b", "a--b", "a/", "/a", "a//b", "x".repeat(257)],
    },
    {
        rule: "repository names on another registry",
        entry: {
            "config thinlayer:appRepository (registry 127.0.0.1:5000)": (v) => config({ registry: "127.0.0.1:5000", appRepository: v }),
            "ensure --repository": (v) => accepts(() => parseRepository(`127.0.0.1:5000/${v}`)),
        },
        good: ["a", "thinlayer/app", "a__b", "a--b"],
        bad: ["A", "a/", "a___b", "x".repeat(256)],
    },
    {
        rule: "platforms",
        entry: {
            "config thinlayer:platform": (v) => config({ platform: v }),
            "BaseImage platform": (v) =>
                validateBaseImageArgs({
                    projectDir: ROOT,
                    image: { image: "base", contextDir: APP, dockerfile: path.join(APP, "Dockerfile.base"), hash: H },
                    repositoryUrl: "r/x",
                    platform: v,
                }).length === 0,
            "ensure --platform": (v) => ensureArgv(["--platform", v]),
        },
        good: ["linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/ppc64le"],
        bad: ["amd64", "linux/x86_64", "Linux/amd64", "linux/amd64/", "linux//amd64"],
    },
    {
        rule: "tags",
        entry: {
            "config thinlayer:releaseImage (a tag pin)": (v) => config({ releaseImage: v }),
            "the program's rollback pin": (v) => accepts(() => classifyPin(v)),
            "an image reference's tag": (v) => accepts(() => parseImageRef(`127.0.0.1:5000/t/app:${v}`)),
            "ensure --keep-tag": (v) => ensureArgv(["--keep-tag", v]),
        },
        good: ["app-0123456789ab", "v1", "_x", "prod-deps-0123456789ab", "a".repeat(128)],
        bad: [".x", "-x", "a".repeat(129), "a b", "é"],
    },
    {
        rule: "builders",
        entry: {
            "config thinlayer:builder": (v) => config({ builder: v }),
            "BaseImage builder": (v) =>
                validateBaseImageArgs({
                    projectDir: ROOT,
                    image: { image: "base", contextDir: APP, dockerfile: path.join(APP, "Dockerfile.base"), hash: H },
                    repositoryUrl: "r/x",
                    builder: v as never,
                }).length === 0,
            "ensure --builder": (v) => ensureArgv(["--builder", v]),
        },
        good: ["auto", "buildx", "docker", "podman", "buildah"],
        bad: ["kaniko", "", "Docker", "auto "],
    },
    {
        rule: "namespaces",
        entry: {
            "config thinlayer:namespace": (v) => config({ namespace: v }),
            "KubernetesTarget namespace": (v) => validateKubernetesTargetArgs({ namespace: v }).length === 0,
        },
        good: ["emr-uat", "a", "007", "x".repeat(63)],
        bad: ["x".repeat(64), "EMR", "a_b", "-a", "a-", ""],
    },
    {
        rule: "quantities",
        entry: {
            "config thinlayer:cpuRequest": (v) => config({ cpuRequest: v }),
            "config thinlayer:memoryLimit": (v) => config({ memoryLimit: v }),
            "Release cpuRequest": (v) => release({ cpuRequest: v }),
            "Release memoryLimit": (v) => release({ memoryLimit: v }),
        },
        good: ["250m", "1", "0.5", "512Mi", "1Gi", "2k"],
        bad: ["lots", "1.5.5", "-1", "1gb", "512 Mi", ""],
    },
];

for (const { rule, entry, good, bad } of TABLE) {
    test(`${rule}: every entry point accepts the good values and rejects the bad ones`, () => {
        const wrong: string[] = [];
        for (const [where, ok] of Object.entries(entry)) {
            for (const v of good) if (!ok(v)) wrong.push(`${where} rejects ${JSON.stringify(v)}`);
            for (const v of bad) if (ok(v)) wrong.push(`${where} accepts ${JSON.stringify(v)}`);
        }
        assert.deepEqual(wrong, []);
    });
}
