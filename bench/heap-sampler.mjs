// Preloaded (`node --import ./bench/heap-sampler.mjs …`) into a process that `npm run bench:heap` measures:
// SIGUSR2 starts V8's sampling heap profiler (objects the GC already collected included), the next SIGUSR2
// stops it and writes the profile to $AIAAS_HEAP_PROFILE_OUT.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
let sampling = false;
process.on("SIGUSR2", () => {
  sampling = !sampling;
  if (sampling) {
    void post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  void post("HeapProfiler.stopSampling").then(({ profile }) => {
    writeFileSync(process.env.AIAAS_HEAP_PROFILE_OUT, JSON.stringify(profile));
    process.stderr.write("heap profile written\n");
  });
});
