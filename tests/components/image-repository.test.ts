/** ImageRepository under the mocked engine: children, parents, inputs; owned vs looked up. */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, valueOf, ecrUrl, seenResource } from "../helpers/mocks";
import { ImageRepository, isEcrRegistry, validateImageRepositoryArgs } from "../../components/imageRepository";
import type { SeenResource } from "../helpers/mocks";

// One mocked engine per file (node --test runs each file in its own process).
let seen: SeenResource[];
before(async () => {
    seen = await installMocks(pulumi);
});

void test("create: an IMMUTABLE, encrypted, scanned repository and its lifecycle policy, children of the component", async () => {
    const repo = new ImageRepository("app", { repositoryName: "thinlayer/app", tagPrefix: "app-", keepTaggedImages: 30 });
    assert.equal(await valueOf(repo.repositoryUrl), ecrUrl("thinlayer/app"));
    const urn = await valueOf(repo.repository!.urn);
    assert.match(urn, /::thinlayer:ecr:ImageRepository\$aws:ecr\/repository:Repository::app-repository$/, "parent: the component");
    const r = await seenResource(seen, (x) => x.type === "aws:ecr/repository:Repository" && x.name === "app-repository");
    assert.equal(r?.name, "app-repository");
    assert.equal(r?.inputs.imageTagMutability, "IMMUTABLE");
    assert.deepEqual(r?.inputs.encryptionConfigurations, [{ encryptionType: "AES256" }]);
    assert.deepEqual(r?.inputs.imageScanningConfiguration, { scanOnPush: true });
    const lp = await seenResource(seen, (x) => x.type === "aws:ecr/lifecyclePolicy:LifecyclePolicy");
    assert.equal(lp?.name, "app-lifecycle");
    assert.equal(lp?.inputs.repository, "thinlayer/app");
    const policy = JSON.parse(lp?.inputs.policy);
    assert.deepEqual(
        policy.rules.map((x: any) => x.selection.countNumber),
        [1, 30],
    );
    assert.deepEqual(policy.rules[1].selection.tagPrefixList, ["app-"]);
});

void test("create with lifecycleStacks: the lifecycle keeps each stack's deployed images before the shared rule", async () => {
    new ImageRepository("stacked", { repositoryName: "thinlayer/stacked", tagPrefix: "deps-", keepTaggedImages: 12, lifecycleStacks: ["uat", "prod"] });
    const lp = await seenResource(seen, (x) => x.type === "aws:ecr/lifecyclePolicy:LifecyclePolicy" && x.name === "stacked-lifecycle");
    const policy = JSON.parse(lp?.inputs.policy);
    assert.deepEqual(
        policy.rules.map((x: any) => [x.rulePriority, x.selection.tagPrefixList ?? "untagged", x.selection.countNumber]),
        [
            [1, "untagged", 1],
            [2, ["uat-deps-", "prod-deps-"], 12],
            [3, ["uat-deps-"], 12],
            [4, ["prod-deps-"], 12],
            [5, ["deps-"], 12],
        ],
    );
    assert.deepEqual(validateImageRepositoryArgs({ repositoryName: "x/y", tagPrefix: "app-", lifecycleStacks: ["uat", "UAT", "uat"] }), [
        'lifecycleStacks: got ["uat","UAT","uat"]; expected at most 4 distinct stack names, each a DNS label (lowercase letters, digits, -). Fix: list the stacks that deploy, e.g. ["uat", "prod"]',
    ]);
});

void test("existing: looked up by name, nothing created", async () => {
    const repo = new ImageRepository("base", { repositoryName: "thinlayer/base", tagPrefix: "deps-", mode: "existing" });
    assert.equal(await valueOf(repo.repositoryUrl), ecrUrl("thinlayer/base"));
    assert.equal(repo.repository, undefined);
    assert.deepEqual(
        seen.filter((x) => x.type.startsWith("aws:") && x.name.startsWith("base-")),
        [],
    );
});

void test("bad args: a pulumi.ResourceError with the validator's message", async () => {
    assert.throws(
        () => new ImageRepository("bad", { repositoryName: "UPPER", tagPrefix: "app-" }),
        (e: unknown) => {
            assert.ok(e instanceof pulumi.ResourceError);
            assert.match((e as Error).message, /^repositoryName: got "UPPER"; expected an ECR repository name/);
            return true;
        },
    );
});

void test("isEcrRegistry: empty or an ECR host", () => {
    assert.equal(isEcrRegistry(""), true);
    assert.equal(isEcrRegistry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), true);
    assert.equal(isEcrRegistry("127.0.0.1:5000"), false);
    assert.equal(isEcrRegistry("ghcr.io"), false);
});
