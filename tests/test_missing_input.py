"""A media word that names nothing: the one line says where the file was looked for and
offers a near name (the form keeps uploads in ``hiapi-inputs/``), and nothing is sent."""

from __future__ import annotations

import io

import pytest
from IPython.core.error import UsageError
from PIL import Image

import hiapi_notebook as h
from hiapi_notebook.errors import RequestValidationError

I2I = "gpt-image-2/image-to-image"


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def refused(**fields) -> str:
    with pytest.raises(RequestValidationError) as caught:
        h.generate("a prompt", model=I2I, **fields)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_it_says_where_it_looked_and_what_the_field_takes(session, sandbox, tmp_path):
    message = refused(input_urls="my_photo.jpg")
    assert message == (
        f"input.input_urls: 'my_photo.jpg' is not a URL, a file or a notebook variable "
        f"(no file 'my_photo.jpg' in {tmp_path.resolve()}); it takes an http(s) URL, a data: URI, "
        "an asset:// id, a result (Generation or one of its outputs), a file path, bytes, "
        "a PIL image or a numpy array"
    )
    assert sandbox.task_count == 0


def test_an_upload_of_the_same_name_with_another_extension_is_offered(session, sandbox, tmp_path):
    (tmp_path / "hiapi-inputs").mkdir()
    (tmp_path / "hiapi-inputs" / "my_photo.png").write_bytes(png_bytes())
    (tmp_path / "my_notes.txt").write_text("not media: never offered")
    message = refused(input_urls="my_photo.jpg")
    assert "(no file 'my_photo.jpg' in " in message
    assert message.split("; it takes ")[0].endswith(": did you mean 'hiapi-inputs/my_photo.png'?")
    assert sandbox.task_count == 0


def test_a_typo_beside_the_notebook_is_offered_before_the_uploads(session, sandbox, tmp_path):
    (tmp_path / "sunset.png").write_bytes(png_bytes())
    (tmp_path / "hiapi-inputs").mkdir()
    (tmp_path / "hiapi-inputs" / "sunset.jpg").write_bytes(png_bytes())
    assert "did you mean 'sunset.png'?" in refused(input_urls="sunest.png")
    assert "did you mean 'sunset.png'?" in refused(input_urls=["sunset.webp"])


def test_a_word_in_a_subfolder_is_looked_for_there(session, sandbox, tmp_path):
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "beach.jpeg").write_bytes(png_bytes())
    message = refused(input_urls="shots/beach.jpg")
    assert f"(no file 'beach.jpg' in {(tmp_path / 'shots').resolve()})" in message
    assert "did you mean 'shots/beach.jpeg'?" in message


def test_nothing_near_offers_nothing(session, sandbox, tmp_path):
    (tmp_path / "zebra.png").write_bytes(png_bytes())
    assert "did you mean" not in refused(input_urls="lighthouse.jpg")


def test_the_magic_says_the_same_in_one_line(ip, sandbox, tmp_path):
    (tmp_path / "hiapi-inputs").mkdir()
    (tmp_path / "hiapi-inputs" / "my_photo.png").write_bytes(png_bytes())
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("hiapi", f"{I2I} --input_urls my_photo.jpg", "as a woodcut")
    message = str(caught.value)
    assert message.startswith("input.input_urls: 'my_photo.jpg' is not a URL, a file or a notebook variable")
    assert "did you mean 'hiapi-inputs/my_photo.png'?" in message and "\n" not in message
    assert sandbox.task_count == 0


@pytest.mark.parametrize("word", ["x" * 100_000, "a\x00b.png", "~no-such-user-here/x.png", "é\u202e.png"])
def test_odd_words_are_one_short_line_too(session, sandbox, tmp_path, word):
    message = refused(input_urls=word)
    assert "is not a URL, a file or a notebook variable" in message
    assert len(message) < 600 and sandbox.task_count == 0
