#!/usr/bin/env python3
"""scaling_model.py -- the data-parallel step time model of docs/scaling.md, from measured inputs.

    step(P) = compute(B) / P + comm(P)

compute(B): the measured single-process step of the global batch (ncelab bench --model M --json),
scaled linearly in B when another global batch is asked for. comm(P), per step, with the
latency alpha measured on loopback TCP (ncelab bench --comm --json, the all-reduce fit) and the
inverse bandwidth beta of the link (8 / link bits per second):
  - ring all-reduce of the N parameter bytes:     2 (P-1) alpha + 2 (P-1)/P N beta
  - all-gather of the 2B x D float embeddings:     (P-1) alpha + (P-1)/P E beta, E = 2B D 4
  - reduce-scatter of their gradients:             the same
  - synchronised batch norm, per layer, forward and backward: two small all-reduces,
    2 log2(P) alpha each (recursive doubling; their bytes are negligible)
  - the loss: one small all-reduce.
The parameter all-reduce runs in buckets of the gradient block (8 MB, from its end), each started
when backward has finished it, as ncelab's trainer does; the bench's measured bucket-ready times
(ncelab bench --model M --json: bucket_ready_ms, backward_ms) are divided by P with the compute,
and the buckets' all-reduces run one after another. Only the part that outlasts backward counts.
The efficiency with a single all-reduce after backward is shown beside it.

usage: scaling_model.py --comm comm_tcp.json --step convnet.json --step resnet18.json [--markdown]
"""
import argparse
import json
import math

# the models' shapes (docs/nn_spec.md): parameter bytes come from bench --comm's ops
BN_LAYERS = {"convnet": 3, "resnet18": 20}
EMBED_DIM = 128


def allreduce_s(P, nbytes, alpha, beta):
    return 2 * (P - 1) * alpha + 2 * (P - 1) / P * nbytes * beta


def serial_comm_s(P, B, bn_layers, alpha, beta):
    """what cannot overlap: the embeddings' all-gather and reduce-scatter around the loss, and the
    small all-reduces of the synchronised batch norms and the loss"""
    E = 2 * B * EMBED_DIM * 4
    gather = 2 * ((P - 1) * alpha + (P - 1) / P * E * beta)
    small = (2 * bn_layers + 1) * 2 * math.log2(P) * alpha
    return gather + small


def exposed_allreduce_s(P, param_bytes, st, scale, alpha, beta, overlap):
    """the parameter all-reduce's time beyond the end of backward: one all-reduce after backward,
    or the buckets of ncelab's trainer, each started when backward has finished it (the bench's
    measured ready times, divided by P with the compute) and run one after another"""
    if not overlap:
        return allreduce_s(P, param_bytes, alpha, beta)
    nb, bf = len(st["bucket_ready_ms"]), st["bucket_floats"] * 4
    end = 0.0
    for j, ready_ms in enumerate(st["bucket_ready_ms"]):
        nbytes = bf if j < nb - 1 else param_bytes - (nb - 1) * bf
        end = max(end, ready_ms * 1e-3 * scale / P) + allreduce_s(P, nbytes, alpha, beta)
    return max(0.0, end - st["backward_ms"] * 1e-3 * scale / P)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--comm", required=True, help="ncelab bench --comm --json output (TCP)")
    ap.add_argument("--step", action="append", required=True, help="ncelab bench --model M --json output")
    ap.add_argument("--ranks", default="1,2,8,32,128")
    ap.add_argument("--links", default="10,100", help="link speeds in Gb/s")
    ap.add_argument("--alpha-us", type=float, default=None, help="override the measured latency")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    comm = json.load(open(a.comm))
    alpha = (a.alpha_us if a.alpha_us is not None else comm["fit"]["allreduce"]["alpha_us"]) * 1e-6
    params = {o["what"].split()[0]: o["bytes"] for o in comm["ops"]
              if o["op"] == "allreduce_f32" and o["what"].endswith("parameters")}
    rows = []
    for path in a.step:
        st = json.load(open(path))
        model, B0, ms = st["model"], st["batch"], st["ms_per_step"]
        for P in [int(x) for x in a.ranks.split(",")]:
            B = B0 if B0 % P == 0 else P * max(1, math.ceil(B0 / P))  # the batch must split into P parts
            compute = ms * 1e-3 * B / B0
            row = {"model": model, "P": P, "batch": B, "compute_per_rank_ms": 1e3 * compute / P}
            for gb in [float(x) for x in a.links.split(",")]:
                beta = 8.0 / (gb * 1e9)
                for overlap in (0, 1):
                    c = 0.0 if P == 1 else serial_comm_s(P, B, BN_LAYERS[model], alpha, beta) + \
                        exposed_allreduce_s(P, params[model], st, B / B0, alpha, beta, overlap)
                    step = compute / P + c
                    row[f"{gb:g}Gb" + ("" if overlap else " serial")] = {
                        "comm_ms": 1e3 * c, "imgs_per_sec": 2 * B / step, "efficiency": (compute / P) / step}
            rows.append(row)
    print(f"alpha = {alpha * 1e6:.2f} us (all-reduce fit, loopback {comm.get('transport', '?')})")
    links = [f"{float(x):g}Gb" for x in a.links.split(",")]
    head = "| model | P | B | compute/P ms | " + " | ".join(
        f"{l}/s: exposed comm ms | images/s | efficiency (one all-reduce after backward)" for l in links) + " |"
    print(head)
    print("|" + "---|" * (4 + 3 * len(links)))
    for r in rows:
        cells = [r["model"], str(r["P"]), str(r["batch"]), f"{r['compute_per_rank_ms']:.1f}"]
        for l in links:
            o, n = r[l], r[l + " serial"]
            cells += [f"{o['comm_ms']:.2f}", f"{o['imgs_per_sec']:.0f}",
                      f"{100 * o['efficiency']:.0f}% ({100 * n['efficiency']:.0f}%)"]
        print("| " + " | ".join(cells) + " |")
    if a.json:
        json.dump({"alpha_us": alpha * 1e6, "rows": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
