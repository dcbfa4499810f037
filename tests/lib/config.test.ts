import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listStacks, loadProjectSchema, loadStackConfig, parseStackConfig, readStackFile } from "../../lib/config";

const root = path.resolve(__dirname, "../..");
const schema = loadProjectSchema(root);
const parse = (raw: Record<string, unknown>) => parseStackConfig(raw, schema, { projectDir: root, stack: "t" });

test("every schema key has a type, a description and a default", () => {
    assert.ok(Object.keys(schema).length > 20);
    for (const [key, e] of Object.entries(schema)) {
        assert.ok(["string", "integer", "boolean", "array"].includes(e.type), `${key}: type ${e.type}`);
        assert.ok(typeof e.description === "string" && e.description.length > 10, `${key}: description`);
        assert.ok(e.default !== undefined, `${key}: default`);
    }
});

test("the uat and prod stack files parse, with the values they set", () => {
    assert.deepEqual(listStacks(root), ["prod", "uat"]);
    const uat = loadStackConfig(root, "uat");
    const prod = loadStackConfig(root, "prod");
    assert.equal(uat.webReplicas, 1);
    assert.equal(prod.webReplicas, 3);
    assert.equal(uat.repositoryMode, "create");
    assert.equal(prod.repositoryMode, "existing");
    assert.equal(uat.appDir, path.join(root, "examples/django-app"));
    assert.equal(uat.baseDockerfile, path.join(root, "examples/django-app/Dockerfile.base"));
    assert.deepEqual(
        uat.workers.map((w) => w.name),
        ["celery"],
    );
    assert.equal(prod.settings.DJANGO_ALLOWED_HOSTS, "emr.example.com");
    // Defaults come from Pulumi.yaml when a stack does not set a key.
    assert.equal(uat.platform, schema.platform.default);
    assert.deepEqual(uat.migrationGlobs, schema.migrationGlobs.default);
});

test("an unknown stack names the flag, the value, the stacks that exist and the fix", () => {
    assert.throws(() => readStackFile(root, "staging"), {
        message: '--stack: got "staging"; expected one of prod, uat. Fix: pass an existing stack, or create Pulumi.staging.yaml (pulumi stack init staging)',
    });
});

test("bad values name the key, the value, what is allowed and the fix; all problems at once", () => {
    assert.throws(
        () => parse({ platform: "amd64", webReplicas: -1, builder: "kaniko" }),
        (e: Error) => {
            const lines = e.message.split("\n");
            assert.equal(lines.length, 3);
            assert.ok(
                lines.includes(
                    'thinlayer:platform: got "amd64"; expected os/arch[/variant], e.g. linux/amd64 or linux/arm64. Fix: set thinlayer:platform to a platform the cluster\'s nodes run',
                ),
            );
            assert.ok(
                lines.includes('thinlayer:builder: got "kaniko"; expected auto | buildx | docker | podman | buildah. Fix: pick one of the listed builders'),
            );
            assert.ok(lines.includes("thinlayer:webReplicas: got -1; expected an integer from 0 to 1000. Fix: set thinlayer:webReplicas within range"));
            return true;
        },
    );
});

test("wrong types and unknown keys are reported", () => {
    assert.throws(() => parse({ webReplicas: "3" }), {
        message: 'thinlayer:webReplicas: got "3"; expected an integer. Fix: set it with pulumi config set thinlayer:webReplicas …',
    });
    assert.throws(() => parse({ webReplica: 3 }), /thinlayer:webReplica: got \(set\); expected a key declared in Pulumi.yaml/);
});

test("NAME=VALUE lists: malformed and duplicate names are errors", () => {
    assert.deepEqual(parse({ settings: ["A=1", "B=x=y", "C="] }).settings, { A: "1", B: "x=y", C: "" });
    assert.throws(() => parse({ settings: ["A=1", "A=2"] }), /thinlayer:settings: got "A=2"; expected each NAME once. Fix: remove the duplicate A/);
    assert.throws(() => parse({ settings: ["no-equals"] }), /thinlayer:settings: got "no-equals"; expected NAME=VALUE/);
    assert.throws(() => parse({ workers: ["web=gunicorn"] }), /reserved web and migrate/);
});

test("secure values in a stack file are never read, and a secret of the wrong type is not echoed", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-config-"));
    fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.mkdirSync(path.join(dir, "examples/django-app"), { recursive: true });
    fs.writeFileSync(
        path.join(dir, "Pulumi.s.yaml"),
        "config:\n  thinlayer:kubeconfig:\n    secure: AAABAKZ2bG9n\n  thinlayer:webReplicas: 4\n  aws:region: eu-west-1\n",
    );
    assert.deepEqual(readStackFile(dir, "s"), { webReplicas: 4 });
    assert.equal(loadStackConfig(dir, "s").webReplicas, 4);
    assert.throws(
        () => parseStackConfig({ kubeconfig: 12345 }, schema, { projectDir: dir, stack: "s" }),
        (e: Error) => e.message.includes("thinlayer:kubeconfig: got (secret)") && !e.message.includes("12345"),
    );
});

test("releaseImage accepts a digest ref or a tag and rejects anything else", () => {
    const d = "a".repeat(64);
    assert.equal(parse({ releaseImage: `123.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app@sha256:${d}` }).releaseImage.endsWith(d), true);
    assert.equal(parse({ releaseImage: "app-0123456789ab" }).releaseImage, "app-0123456789ab");
    assert.throws(() => parse({ releaseImage: "repo@sha256:short" }), /thinlayer:releaseImage: got "repo@sha256:short"/);
});

test("values `pulumi config set` stores as strings are read as the schema type, as the engine does", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-config-"));
    fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.mkdirSync(path.join(dir, "examples/django-app"), { recursive: true });
    fs.writeFileSync(
        path.join(dir, "Pulumi.s.yaml"),
        'config:\n  thinlayer:webReplicas: "2"\n  thinlayer:workers: \'["celery=celery -A emr worker"]\'\n  thinlayer:namespace: "007"\n',
    );
    assert.deepEqual(readStackFile(dir, "s"), { webReplicas: 2, workers: ["celery=celery -A emr worker"], namespace: "007" });
    const cfg = loadStackConfig(dir, "s");
    assert.equal(cfg.webReplicas, 2);
    assert.deepEqual(cfg.workers, [{ name: "celery", command: "celery -A emr worker" }]);
    // A string that is not a number stays a string, so the parser reports it with the key.
    fs.writeFileSync(path.join(dir, "Pulumi.s.yaml"), 'config:\n  thinlayer:webReplicas: "two"\n');
    assert.throws(() => loadStackConfig(dir, "s"), {
        message: 'thinlayer:webReplicas: got "two"; expected an integer. Fix: set it with pulumi config set thinlayer:webReplicas …',
    });
});

test("lifecycleStacks: defaults to uat and prod; names must be distinct DNS labels, at most 4", () => {
    assert.deepEqual(parse({}).lifecycleStacks, ["uat", "prod"]);
    assert.deepEqual(parse({ lifecycleStacks: ["prod"] }).lifecycleStacks, ["prod"]);
    assert.throws(() => parse({ lifecycleStacks: ["Prod", "uat"] }), {
        message:
            'thinlayer:lifecycleStacks: got "Prod"; expected stack names that are DNS labels (lowercase letters, digits, -; at most 63). Fix: list the stacks that deploy, e.g. [uat, prod]',
    });
    assert.throws(() => parse({ lifecycleStacks: ["a", "b", "c", "d", "a"] }), {
        message:
            'thinlayer:lifecycleStacks: got ["a","b","c","d","a"]; expected at most 4 distinct stack names. Fix: remove duplicates; list only the stacks that deploy',
    });
});
