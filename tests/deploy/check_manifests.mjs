// Validates every object in the given Kubernetes manifests against the
// OpenAPI schema of its kind (kubernetes-models, pinned in package.json):
// wrong types, missing required fields, bad enum values. Unknown kinds fail:
// a manifest nothing checks is worse than one that fails.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";

const models = {
  "v1": core,
  "apps/v1": apps,
  "rbac.authorization.k8s.io/v1": rbac,
};

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.log(`${file}: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const Model = models[obj.apiVersion]?.[obj.kind];
    const name = `${file}: ${obj.kind} ${obj.metadata?.name}`;
    if (!Model) {
      console.log(`${name}: no schema for ${obj.apiVersion} ${obj.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(obj).validate();
      checked++;
    } catch (e) {
      console.log(`${name}: ${e.message}`);
      failures++;
    }
  }
}
console.log(`${checked} objects valid, ${failures} failures`);
process.exit(failures ? 1 : 0);
