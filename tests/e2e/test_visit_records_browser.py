"""Visit records in real Chromium: visit staff find an inmate, register a relative, attach the
photo and the proof of relationship from files, verify the relative, tick them and land on
the booking form already filled in; the photo shows in the row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.face_images import astronaut, jpeg
from tests.procs import ServerProcess

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ID_NUMBER = "440304197003129025"  # 17 digits and a valid check digit


def test_staff_register_verify_and_book_a_relative(
    browser: Any, demo_server: ServerProcess, tmp_path: Path
) -> None:
    photo = tmp_path / "face.jpg"
    photo.write_bytes(jpeg(astronaut()))
    proof = tmp_path / "hukou.pdf"
    proof.write_bytes(PDF)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{demo_server.url}/login")
    page.fill("#username", "visit1")
    page.fill("#password", demo_server.credentials()["users"]["visit1"]["password"])
    page.click("#login-submit")
    page.wait_for_function("location.pathname !== '/login'")
    page.goto(f"{demo_server.url}/visits/records")
    page.fill("#q", "陈海波")
    page.click("#search button[type=submit]")
    page.wait_for_function("document.querySelectorAll('section.vs-inmate').length === 1")
    card = page.locator('section.vs-inmate[data-id="inmate-1003"]')
    card.wait_for()

    card.locator("details summary").click()
    form = card.locator("form.register")
    form.locator("input[name=name]").fill("陈大")
    form.locator("input[name=relationship]").fill("父亲")
    # a typo in the ID number is refused with the reason, nothing is registered
    form.locator("input[name=id_number]").fill(ID_NUMBER[:-1] + "1")
    form.locator("button[type=submit]").click()
    page.locator("#problem").wait_for(state="visible")
    assert "check digit" in page.locator("#problem").inner_text()
    form.locator("input[name=id_number]").fill(ID_NUMBER)
    form.locator("input[name=phone]").fill("13800001111")
    form.locator("button[type=submit]").click()
    row = card.locator('tr[data-status="pending"]')
    row.wait_for()
    assert "陈大" in row.inner_text() and "…9025" in row.inner_text()
    assert row.locator("input.pick").is_disabled()  # pending: not bookable yet

    rel_id = row.get_attribute("data-id")
    fresh = f'section.vs-inmate[data-id="inmate-1003"] tr[data-id="{rel_id}"]'
    page.locator(f'{fresh} input[type=file][data-kind="photo"]').set_input_files(str(photo))
    page.locator(f"{fresh} img.vs-thumb").wait_for()
    page.locator(f'{fresh} input[type=file][data-kind="proof"]').set_input_files(str(proof))
    page.locator(f'{fresh} a[href$="/proof"]').wait_for()
    page.locator(f"{fresh} button.verify").click()
    page.locator(f'section.vs-inmate tr[data-id="{rel_id}"][data-status="approved"]').wait_for()
    shown = page.evaluate(
        "async (id) => (await fetch(`/api/v1/visits/relatives/${id}`)).json()", rel_id
    )
    assert (shown["status"], shown["has_photo"], shown["has_proof"]) == ("approved", True, True)
    # the thumbnail really is the stored photo
    width = page.locator(f"{fresh} img.vs-thumb").evaluate("(img) => img.naturalWidth")
    assert width > 0

    page.locator(f"{fresh} input.pick").check()
    page.locator('section.vs-inmate[data-id="inmate-1003"] button.book').click()
    page.wait_for_function("location.pathname === '/visits'")
    assert page.input_value("#b-inmate") == "inmate-1003"
    assert page.input_value("#b-relatives") == rel_id
    context.close()
