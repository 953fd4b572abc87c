"""The clients people use, against a running `lcl serve`: the official `openai` Python
client (models list, one LCL episode, the same episode streamed, a corrupt image refused,
the names' likelihoods through extra_body) and, with --browser, Debian's headless Chromium
driving the page through its inputs; then Ctrl-C stops the server cleanly.

Run by tests/clients/run.sh, which builds the venv:
    python check_clients.py --lcl target/debug/lcl [--browser] [--screenshot docs/serve-page.png]
"""

import argparse
import base64
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from openai import BadRequestError, OpenAI

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def start_server(lcl, *args):
    """Starts `lcl serve --port 0 ARGS` and returns (process, base URL)."""
    env = dict(os.environ, LCL_DEVICE=os.environ.get("LCL_DEVICE", "flex"))
    process = subprocess.Popen(
        [lcl, "serve", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if " at http://" not in line:
        process.kill()
        sys.exit(f"lcl serve did not start: {line!r}")
    url = line.split(" at ")[1].split(" ")[0]
    return process, url


def stop_server(process):
    """Ctrl-C, as a user would: the server must exit 0 within 30 s."""
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=30)
    assert code == 0, f"lcl serve exited {code} after Ctrl-C"


def data_url(path, mime="image/png"):
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def user(url):
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}


def episode():
    images = FIXTURES / "images"
    return [
        user(data_url(images / "a.png")),
        {"role": "assistant", "content": "cactihog"},
        user(data_url(images / "b.jpg", "image/jpeg")),
        {"role": "assistant", "content": "hedgehog"},
        user(data_url(images / "c.png")),
    ]


def check_openai_client(url):
    client = OpenAI(base_url=url + "/v1", api_key="not-needed")
    models = [m.id for m in client.models.list().data]
    assert models == ["tiny-lcl"], models

    whole = client.chat.completions.create(model="tiny-lcl", messages=episode(), max_tokens=10)
    reference = json.loads((FIXTURES / "ref" / "episode.json").read_text())
    assert whole.usage.prompt_tokens == len(reference["input_ids"]), whole.usage
    assert whole.usage.completion_tokens == 10, whole.usage
    assert whole.choices[0].finish_reason == "length"
    text = whole.choices[0].message.content
    assert text, "an empty answer"

    stream = client.chat.completions.create(
        model="tiny-lcl",
        messages=episode(),
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == text, ("".join(pieces), text)
    assert finish == "length" and usage.completion_tokens == 10

    scored = client.chat.completions.create(
        model="tiny-lcl",
        messages=episode(),
        max_tokens=10,
        extra_body={"lcl": {"score_names": True}},
    )
    names = scored.model_extra["lcl"]["names"]
    assert [n["name"] for n in names] == ["cactihog", "hedgehog"], names
    assert abs(sum(n["probability"] for n in names) - 1) < 1e-9

    corrupt = episode()
    corrupt[0] = user("data:image/png;base64," + base64.b64encode(b"\x89PNG not an image").decode())
    try:
        client.chat.completions.create(model="tiny-lcl", messages=corrupt, max_tokens=10)
        raise AssertionError("a corrupt image was answered")
    except BadRequestError as error:
        assert error.status_code == 400
        assert "messages[0].content[0].image_url.url" in str(error), str(error)
    print(f"openai client: models, episode ({text!r}), stream, names, corrupt image: ok")
    return text


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1300"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_for(condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def check_page_inputs(url):
    """Fills the page through its file and text inputs, as a person would."""
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        driver.get(url)
        wait_for(lambda: "tiny-lcl" in driver.find_element(By.ID, "model-line").text, "the model line")
        shots = driver.find_elements(By.CSS_SELECTOR, ".shot")
        assert len(shots) == 2, len(shots)
        for shot, (image, name) in zip(shots, [("a.png", "cactihog"), ("b.jpg", "hedgehog")]):
            shot.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(FIXTURES / "images" / image))
            shot.find_element(By.CSS_SELECTOR, "input.name").send_keys(name)
        driver.find_element(By.ID, "query-file").send_keys(str(FIXTURES / "images" / "c.png"))
        wait_for(lambda: driver.execute_script("return document.querySelectorAll('.drop img').length") == 3, "the previews")
        driver.find_element(By.ID, "ask").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#names li"), "the answer")
        names = [li.find_element(By.CSS_SELECTOR, ".name").text for li in driver.find_elements(By.CSS_SELECTOR, "#names li")]
        assert names == ["cactihog", "hedgehog"], names
        answer = driver.execute_script("return document.getElementById('answer').textContent")
        assert answer, "no answer on the page"
        print("page, filled through its inputs: ok")
    finally:
        driver.quit()


def check_miniature_page(url, screenshot):
    """The shipped miniature: a ready example episode answered on the page."""
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        driver.get(url)
        examples = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "button.example"), "the examples")
        notice = driver.find_element(By.ID, "notice").text
        assert "knows only that world" in notice, notice
        examples[0].click()
        driver.find_element(By.ID, "ask").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#names li"), "the answer")
        answer = driver.find_element(By.ID, "answer").text
        expected = driver.find_element(By.ID, "expected").text
        print(f"miniature page: answer {answer!r}, {expected}")
        if screenshot:
            driver.save_screenshot(str(screenshot))
            print(f"screenshot: {screenshot}")
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lcl", required=True, help="the lcl binary")
    parser.add_argument("--browser", action="store_true", help="also drive the page in headless Chromium")
    parser.add_argument("--screenshot", type=pathlib.Path, help="with --browser: save the miniature's page here")
    args = parser.parse_args()

    tiny = ["--model", str(FIXTURES / "tiny-lcl"), "--vision", str(FIXTURES / "tiny-clip"),
            "--model-name", "tiny-lcl", "--max-tokens", "10"]
    process, url = start_server(args.lcl, *tiny)
    try:
        check_openai_client(url)
        if args.browser:
            check_page_inputs(url)
    finally:
        stop_server(process)
    print("Ctrl-C: the server stopped cleanly")
    if args.browser:
        process, url = start_server(args.lcl, "--max-tokens", "20")
        try:
            check_miniature_page(url, args.screenshot)
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
