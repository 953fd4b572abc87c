"""Load benchmark of `lcl serve` (not a test): N concurrent clients send LCL episodes for a
bounded time against a running server and the figures are printed: requests answered,
errors by kind, latency percentiles, episodes per second.

The episodes are the server's own examples (GET /v1/lcl/examples: the shipped miniature's
world); any other server needs --episode FILE, a JSON chat request body.
    python3 scripts/serve_load.py --url http://127.0.0.1:8080 --clients 8 --seconds 60
Only the standard library is used.
"""

import argparse
import collections
import json
import threading
import time
import urllib.error
import urllib.request


def request_bodies(url, episode_file, max_tokens):
    if episode_file:
        return [json.loads(open(episode_file).read())]
    with urllib.request.urlopen(url + "/v1/lcl/examples") as reply:
        examples = json.load(reply)["examples"]
    if not examples:
        raise SystemExit("the server offers no examples (not the miniature): pass --episode FILE")
    bodies = []
    for example in examples:
        messages = []
        for shot in example["support"]:
            messages.append({"role": "user", "content": [{"type": "image_url", "image_url": {"url": shot["image"]}}]})
            messages.append({"role": "assistant", "content": shot["name"]})
        messages.append({"role": "user", "content": [{"type": "image_url", "image_url": {"url": example["query"]}}]})
        bodies.append({"messages": messages, "max_tokens": max_tokens})
    return bodies


def client(url, bodies, deadline, latencies, errors, lock, offset):
    i = offset
    while time.time() < deadline:
        body = json.dumps(bodies[i % len(bodies)]).encode()
        i += 1
        request = urllib.request.Request(
            url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        started = time.time()
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                json.load(reply)
            with lock:
                latencies.append(time.time() - started)
        except urllib.error.HTTPError as error:
            with lock:
                errors[f"HTTP {error.code}"] += 1
        except Exception as error:  # noqa: BLE001 - every failure is counted by kind
            with lock:
                errors[type(error).__name__] += 1


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=20)
    parser.add_argument("--episode", help="a JSON chat request body to send instead of the examples")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    bodies = request_bodies(args.url, args.episode, args.max_tokens)
    latencies, errors, lock = [], collections.Counter(), threading.Lock()
    started = time.time()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=client, args=(args.url, bodies, deadline, latencies, errors, lock, k))
        for k in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    figures = {
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "answered": len(latencies),
        "errors": dict(errors),
        "episodes_per_second": round(len(latencies) / elapsed, 2),
    }
    if latencies:
        figures.update({f"p{p}_ms": round(1000 * percentile(latencies, p)) for p in (50, 90, 99)})
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
