/**
 * GPU placement policy: a tenant listed in `tenants` runs only on replicas that use one of its
 * GPUs (and waits for them when they are busy); every other tenant prefers replicas on GPUs no
 * tenant is kept on, so the reserved GPUs stay free for their tenants while the rest can serve.
 */
import {
  JsonObject,
  PlacementDecision,
  PlacementSnapshot,
  ReplicaInfo,
  registerPlacement,
} from '../../../assembly/index';

export { llorch_abi_version, llorch_alloc, llorch_decide } from '../../../assembly/index';

function gpusOf(tenants: JsonObject, tenant: string): string[] {
  return tenants.getStrings(tenant);
}

function usesAny(r: ReplicaInfo, gpus: string[]): bool {
  for (let i = 0; i < gpus.length; i++) if (r.onDevice(gpus[i])) return true;
  return false;
}

function decide(s: PlacementSnapshot): PlacementDecision {
  const tenants = s.params.getObject('tenants');
  if (tenants.has(s.tenant.id)) {
    const gpus = gpusOf(tenants, s.tenant.id);
    const ids: string[] = [];
    for (let i = 0; i < s.replicas.length; i++) if (usesAny(s.replicas[i], gpus)) ids.push(s.replicas[i].id);
    return PlacementDecision.only(ids);
  }
  const reserved: string[] = [];
  const keys = tenants.keys;
  for (let i = 0; i < keys.length; i++) {
    const gpus = gpusOf(tenants, keys[i]);
    for (let j = 0; j < gpus.length; j++) reserved.push(gpus[j]);
  }
  const d = PlacementDecision.builtIn();
  for (let i = 0; i < s.replicas.length; i++)
    if (!usesAny(s.replicas[i], reserved)) d.score(s.replicas[i].id, 1);
  return d;
}

registerPlacement(decide);
