/**
 * The thinlayer policy pack. Run with `pulumi preview|up --policy-pack policy/` (the workflows do).
 * Pulumi loads this file with ts-node; modules resolve from the repository's root node_modules.
 * The policies and their checks live in policies.ts and checks.ts, so tests can run them without
 * starting the analyzer server this constructor starts.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("thinlayer", { policies });
