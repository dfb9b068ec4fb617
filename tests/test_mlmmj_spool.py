"""The contract of a ListSpool (iredldap.mlmmj), held by both backends: the
local spool (`LocalSpool`) and mlmmjadmin's HTTP API (`MlmmjadminClient`
against tests/fake_mlmmjadmin.py, whose lists are a real LocalSpool).

Each test asserts on the files the list directory ends up with (reference
mlmmj.md 3.4-3.9, 4): what Debian's mlmmj and mlmmjadmin read.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from iredldap.config import Settings
from iredldap.errors import AlreadyExists, ConfigError, InvalidInput, NoSuchAccount
from iredldap.mlmmj import Subscriber, list_spool_of
from iredldap.mlmmj.mlmmjadmin import MlmmjadminClient
from iredldap.mlmmj.spool import SUB_DIRS, LocalSpool
from iredldap.model import mlmmj_profile as mp

from .conftest import make_settings
from .fixtures_mlmmj import DEBIAN_SKEL

LIST = "sales@example.com"
DEFAULT_HEADERS = ("Precedence: bulk\n"
                   "List-Id: <sales@example.com>\n"
                   "Reply-To: sales@example.com\n"
                   "List-Post: <mailto:sales@example.com>\n"
                   "List-Subscribe: <mailto:sales+subscribe@example.com?subject=Subscribe>\n"
                   "List-Unsubscribe: <mailto:sales+unsubscribe@example.com?subject=Unsubscribe>\n")
# What a create without parameters leaves in control/ (mlmmjadmin 3.6.3 with
# iRedMail's smtp_port line).
BARE_CONTROL = {
    "customheaders": DEFAULT_HEADERS,
    "ifmodsendonlymodmoderate": "",
    "listaddress": "sales@example.com\n",
    "moderators": "postmaster@example.com\n",
    "noget": "",
    "owner": "postmaster@example.com\n",
    "smtpport": "10027\n",
    "subonlyget": "",
    "subonlypost": "",
    "tocc": "",
}


def control(sut, mail: str = LIST) -> dict[str, str]:
    folder = sut.files.list_dir(mail) / "control"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (content) and folder (None) under `root`."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def whole(sut) -> dict[str, bytes | None]:
    return tree(sut.files.spool_dir) | {"archive/" + k: v for k, v in tree(sut.files.archive_dir).items()}


# -- create ------------------------------------------------------------------------

def test_create_with_defaults_lays_out_the_list_as_mlmmjadmin(list_spool):
    list_spool.spool.create(LIST, {})
    listdir = list_spool.files.spool_dir / "example.com" / "sales"
    entries = {str(p.relative_to(listdir)) for p in listdir.iterdir()} | {"queue/discarded"}
    assert entries == set(SUB_DIRS) | {"index"}
    assert all((listdir / d).is_dir() for d in SUB_DIRS)
    assert (listdir / "index").read_bytes() == b""
    skel = DEBIAN_SKEL / "en"
    assert {p.name: p.read_bytes() for p in (listdir / "text").iterdir()} == \
        {p.name: p.read_bytes() for p in skel.iterdir()}
    assert control(list_spool) == BARE_CONTROL
    for path in [listdir.parent, *listdir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    # Nothing else in the spool: no temporary files or folders left.
    assert sorted(p.name for p in listdir.parent.iterdir()) == ["sales"]
    assert list_spool.spool.exists(LIST) and list_spool.spool.subscribers(LIST) == []


def test_get_gives_mlmmjadmins_43_keys_in_its_order(list_spool):
    list_spool.spool.create(LIST, {})
    profile = list_spool.spool.profile(LIST)
    assert len(profile) == 43 and tuple(profile) == mp.PROFILE_KEYS
    assert list(profile)[:2] == ["close_list", "only_moderator_can_post"]
    assert list(profile)[26:] == ["enable_newsletter_subscription", "custom_headers", "remove_headers",
                                  "extra_addresses", "owner", "owners", "max_message_size", "subject_prefix",
                                  "relay_host", "smtp_helo", "smtp_port", "name", "moderate_subscription",
                                  "moderators", "subscription_moderators", "footer_text", "footer_html"]
    yes = {k for k, v in profile.items() if v == "yes"}
    assert yes == {"only_subscriber_can_post", "if_mod_send_only_mod_moderate", "disable_retrieving_old_posts",
                   "only_subscriber_can_get_old_posts", "tocc"}
    assert profile["owner"] == profile["owners"] == profile["moderators"] == ["postmaster@example.com"]
    assert profile["smtp_port"] == "10027" and profile["max_message_size"] == "" and profile["extra_addresses"] == []
    assert profile["custom_headers"] == sorted(DEFAULT_HEADERS.splitlines())


def test_the_reference_example_of_create_then_update(list_spool):
    # mlmmj.md 4.3, as seen on a real mlmmjadmin.
    list_spool.spool.create(LIST, {"name": "Demo List", "owner": "owner@example.test", "moderators": "mod@example.test",
                                   "subject_prefix": "[demo]", "max_message_size": "10240", "disable_archive": "yes"})
    assert sorted(control(list_spool)) == ("customheaders ifmodsendonlymodmoderate listaddress maxmailsize moderators "
                                           "name noarchive noget owner prefix smtpport subonlyget subonlypost "
                                           "tocc").split()
    list_spool.spool.update(LIST, {"only_moderator_can_post": "yes", "subject_prefix": "[changed]",
                                   "disable_archive": "no"})
    files = control(list_spool)
    assert sorted(files) == ("customheaders ifmodsendonlymodmoderate listaddress maxmailsize moderators modonlypost "
                             "name noget owner prefix smtpport subonlyget tocc").split()
    assert (files["prefix"], files["maxmailsize"], files["smtpport"]) == ("[changed]\n", "10240\n", "10027\n")
    assert (files["name"], files["owner"], files["moderators"]) == ("Demo List\n", "owner@example.test\n",
                                                                    "mod@example.test\n")


def test_create_again_keeps_subscribers_and_writes_the_defaults_again(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"owner": "boss@example.com", "extra_addresses": "other@example.com"})
    spool.add_subscribers(LIST, ["alice@example.org"])
    spool.create(LIST, {"subject_prefix": "[x]"})
    files = control(list_spool)
    assert files["owner"] == "postmaster@example.com\n" and files["prefix"] == "[x]\n"
    assert files["listaddress"] == "sales@example.com\nother@example.com\n"
    assert spool.subscribers(LIST) == [Subscriber("alice@example.org", "normal")]


# -- every parameter ------------------------------------------------------------------

# name -> (value given, GET answer, file content (None: no file)) for the
# parameters that are not plain flags.
SAMPLES = {
    "custom_headers": ("X-B: 2\nX-A: 1\nReply-To: me@example.org\nlist-id: mine",
                       sorted(["X-A: 1", "X-B: 2", *DEFAULT_HEADERS.splitlines()]),
                       "X-A: 1\nX-B: 2\n" + DEFAULT_HEADERS),
    "remove_headers": ("Message-ID, Received:", ["Message-ID:", "Received:"], "Message-ID:\nReceived:\n"),
    "extra_addresses": ("b@example.com, a@example.com", ["a@example.com", "b@example.com"],
                        "sales@example.com\nb@example.com\na@example.com\n"),
    "owner": ("Boss@Example.com, second@example.com", ["Boss@Example.com", "second@example.com"],
              "Boss@Example.com\nsecond@example.com\n"),
    "max_message_size": ("10240", "10240", "10240\n"),
    "subject_prefix": ("[Liste] ", "[Liste] ", "[Liste] \n"),
    "relay_host": ("127.0.0.1", "127.0.0.1", "127.0.0.1\n"),
    "smtp_helo": ("lists.example.com", "lists.example.com", "lists.example.com\n"),
    "smtp_port": ("2525", "2525", "2525\n"),
    "name": ("Sales team ", "Sales team ", "Sales team \n"),
    "moderators": ("Mod2@Example.com,mod1@example.com", ["mod1@example.com", "mod2@example.com"],
                   "mod2@example.com\nmod1@example.com\n"),
    "subscription_moderators": ("S2@example.com,s1@example.com", ["s1@example.com", "s2@example.com"],
                                "s2@example.com\ns1@example.com\n"),
    "footer_text": ("  Über uns\nzweite Zeile  \n", "Über uns\nzweite Zeile", "Über uns\nzweite Zeile\n"),
    "footer_html": ("<p>foot</p>", "<p>foot</p>", "<p>foot</p>\n"),
}
# What an empty value leaves: (GET answer, file content).
EMPTIED = {"custom_headers": (sorted(DEFAULT_HEADERS.splitlines()), DEFAULT_HEADERS),
           "extra_addresses": ([], "sales@example.com\n")}
FLAGS = [p for p in mp.PROFILE_PARAMS if p.kind == "boolean"]


@pytest.mark.parametrize("param", FLAGS, ids=lambda p: p.name)
def test_every_flag_round_trips(list_spool, param):
    spool = list_spool.spool
    spool.create(LIST, {})
    spool.update(LIST, {param.name: "yes"})
    assert spool.profile(LIST)[param.name] == "yes"
    assert control(list_spool)[param.file] == ""
    spool.update(LIST, {param.name: "no"})
    assert spool.profile(LIST)[param.name] == "no"
    assert param.file not in control(list_spool)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_other_parameter_round_trips(list_spool, name):
    spool = list_spool.spool
    param = mp.BY_NAME[name]
    value, answer, content = SAMPLES[name]
    spool.create(LIST, {})
    spool.update(LIST, {name: value})
    profile = spool.profile(LIST)
    assert profile[name] == answer
    assert control(list_spool)[param.file] == content
    spool.update(LIST, {name: ""})
    empty_answer, empty_content = EMPTIED.get(name, ([] if param.kind == "list" else "", None))
    assert spool.profile(LIST)[name] == empty_answer
    assert control(list_spool).get(param.file) == empty_content


def test_owners_is_an_alias_of_owner(list_spool):
    list_spool.spool.create(LIST, {"owners": "a@example.com"})
    assert control(list_spool)["owner"] == "a@example.com\n"
    list_spool.spool.update(LIST, {"owners": "b@example.com"})
    assert list_spool.spool.profile(LIST)["owners"] == ["b@example.com"]


def test_every_parameter_of_the_table_is_sampled():
    assert {p.name for p in mp.PROFILE_PARAMS} == {p.name for p in FLAGS} | set(SAMPLES)
    assert len(mp.PROFILE_KEYS) == 43 and len(FLAGS) == 28


# -- conflict rules ---------------------------------------------------------------------

def test_both_posting_flags_yes_leaves_only_moderators(list_spool):
    list_spool.spool.create(LIST, {})
    list_spool.spool.update(LIST, {"only_moderator_can_post": "yes", "only_subscriber_can_post": "yes"})
    files = control(list_spool)
    assert "modonlypost" in files and "subonlypost" not in files


def test_writing_one_posting_flag_removes_the_other(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {})
    assert "subonlypost" in control(list_spool)
    spool.update(LIST, {"only_moderator_can_post": "yes"})
    assert {"modonlypost"} == {"modonlypost", "subonlypost"} & set(control(list_spool))
    spool.update(LIST, {"only_subscriber_can_post": "yes"})
    assert {"subonlypost"} == {"modonlypost", "subonlypost"} & set(control(list_spool))


def test_create_skips_a_default_that_would_conflict(list_spool):
    list_spool.spool.create(LIST, {"only_moderator_can_post": "yes"})
    files = control(list_spool)
    assert "modonlypost" in files and "subonlypost" not in files


@pytest.mark.parametrize("form, content", [
    ({"moderate_subscription": "yes", "subscription_moderators": "m1@example.com,m2@example.com"},
     "m1@example.com\nm2@example.com\n"),
    ({"moderate_subscription": "yes", "subscription_moderators": ""}, ""),
    ({"moderate_subscription": "yes"}, ""),
    ({"subscription_moderators": "m1@example.com"}, "m1@example.com\n"),
    ({"moderate_subscription": "no", "subscription_moderators": "m1@example.com"}, None),
    ({"moderate_subscription": "no"}, None),
    ({"subscription_moderators": ""}, None),
])
def test_subscription_moderation(list_spool, form, content):
    spool = list_spool.spool
    spool.create(LIST, {})
    if content is None:
        spool.update(LIST, {"subscription_moderators": "old@example.com"})
    spool.update(LIST, form)
    assert control(list_spool).get("submod") == content
    profile = spool.profile(LIST)
    assert profile["moderate_subscription"] == ("no" if content is None else "yes")
    assert profile["subscription_moderators"] == (content or "").split()


def test_moderate_subscription_yes_keeps_the_moderators_there(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"subscription_moderators": "m@example.com"})
    spool.update(LIST, {"moderate_subscription": "yes"})
    assert control(list_spool)["submod"] == "m@example.com\n"


def test_an_html_footer_brings_an_empty_text_footer(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"footer_html": "<p>x</p>"})
    files = control(list_spool)
    assert (files["footer_html"], files["footer_text"]) == ("<p>x</p>\n", "\n")
    spool.update(LIST, {"footer_text": "plain"})
    spool.update(LIST, {"footer_html": "<p>y</p>"})
    assert control(list_spool)["footer_text"] == "plain\n"


# -- subscribers ----------------------------------------------------------------------------

def test_subscribers_are_filed_by_first_character_and_version(list_spool):
    spool = list_spool.spool
    listdir = list_spool.files.list_dir(LIST)
    spool.create(LIST, {})
    spool.add_subscribers(LIST, ["alice@example.org", "Anna@Example.org", "bob@example.org", "alice@example.org"])
    spool.add_subscribers(LIST, ["dave@example.org"], subscription="digest")
    spool.add_subscribers(LIST, ["nina@example.org", "alice@example.org"], subscription="nomail")
    spool.add_subscribers(LIST, ["alice@example.org"])       # already there: not twice
    assert sorted((listdir / "subscribers.d" / "a").read_text().splitlines()) == ["alice@example.org",
                                                                                   "anna@example.org"]
    assert (listdir / "subscribers.d" / "b").read_text() == "bob@example.org\n"
    assert (listdir / "digesters.d" / "d").read_text() == "dave@example.org\n"
    assert sorted(p.name for p in (listdir / "nomailsubs.d").iterdir()) == ["a", "n"]
    assert sorted(spool.subscribers(LIST), key=lambda s: (s.subscription, s.mail)) == [
        Subscriber("dave@example.org", "digest"), Subscriber("alice@example.org", "nomail"),
        Subscriber("nina@example.org", "nomail"), Subscriber("alice@example.org", "normal"),
        Subscriber("anna@example.org", "normal"), Subscriber("bob@example.org", "normal")]
    kinds = [s.subscription for s in spool.subscribers(LIST)]
    assert kinds == sorted(kinds, key=["normal", "nomail", "digest"].index)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in listdir.rglob("*.d/*"))


def test_removing_subscribers_from_every_version(list_spool):
    spool = list_spool.spool
    listdir = list_spool.files.list_dir(LIST)
    spool.create(LIST, {})
    spool.add_subscribers(LIST, ["alice@example.org", "anna@example.org", "bob@example.org"])
    spool.add_subscribers(LIST, ["alice@example.org"], subscription="digest")
    spool.remove_subscribers(LIST, ["alice@example.org", "bob@example.org", "nobody@example.org"])
    assert spool.subscribers(LIST) == [Subscriber("anna@example.org", "normal")]
    assert not (listdir / "subscribers.d" / "b").exists() and not (listdir / "digesters.d" / "a").exists()
    assert (listdir / "subscribers.d" / "a").read_text() == "anna@example.org\n"
    spool.add_subscribers(LIST, ["zed@example.org"], subscription="nomail")
    spool.remove_subscribers(LIST, ["ALL"])
    assert spool.subscribers(LIST) == []
    assert all(not any((listdir / d).iterdir()) for d in ("subscribers.d", "digesters.d", "nomailsubs.d"))
    assert not [p for p in listdir.iterdir() if p.name.startswith(".")]


# -- delete and rename ------------------------------------------------------------------------------

def test_delete_without_archive_removes_the_list(list_spool):
    list_spool.spool.create(LIST, {})
    assert list_spool.spool.delete(LIST, archive=False) is None
    assert not list_spool.files.list_dir(LIST).exists()
    assert tree(list_spool.files.archive_dir) == {}
    assert list_spool.spool.delete(LIST, archive=False) is None and list_spool.spool.delete(LIST, archive=True) is None


def test_delete_with_archive_nests_the_list_under_a_timestamp(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"subject_prefix": "[s]"})
    spool.add_subscribers(LIST, ["alice@example.org"])
    where = spool.delete(LIST, archive=True)
    assert where is not None
    outer = Path(where)
    assert outer.parent == list_spool.files.archive_dir / "example.com"
    assert re.fullmatch(r"sales-\d{14}", outer.name)
    assert [p.name for p in outer.iterdir()] == ["sales"]
    assert (outer / "sales" / "control" / "prefix").read_text() == "[s]\n"
    assert (outer / "sales" / "subscribers.d" / "a").read_text() == "alice@example.org\n"
    assert not list_spool.files.list_dir(LIST).exists() and not spool.exists(LIST)
    spool.create(LIST, {})
    second = spool.delete(LIST, archive=True)
    assert second is not None and second != where and Path(second, "sales", "control").is_dir()


def test_rename_moves_settings_and_subscribers(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {"subject_prefix": "[s] ", "extra_addresses": "old-alias@example.com",
                        "custom_headers": "X-Team: sales", "moderate_subscription": "yes",
                        "only_moderator_can_post": "yes", "footer_text": "bye"})
    spool.add_subscribers(LIST, ["alice@example.org", "bob@example.org"])
    spool.add_subscribers(LIST, ["dave@example.org"], subscription="digest")
    before = spool.profile(LIST)
    spool.rename(LIST, "team@example.net")
    assert not spool.exists(LIST) and spool.exists("team@example.net")
    files = control(list_spool, "team@example.net")
    assert files["listaddress"] == "team@example.net\nold-alias@example.com\n"
    assert files["customheaders"] == "X-Team: sales\n" + DEFAULT_HEADERS.replace(
        "sales@example.com", "team@example.net").replace("sales+", "team+").replace("@example.com?", "@example.net?")
    after = spool.profile("team@example.net")
    assert {k: v for k, v in after.items() if k != "custom_headers"} == \
        {k: v for k, v in before.items() if k != "custom_headers"}
    assert sorted(spool.subscribers("team@example.net"), key=lambda s: s.mail) == [
        Subscriber("alice@example.org", "normal"), Subscriber("bob@example.org", "normal"),
        Subscriber("dave@example.org", "digest")]
    listdir = list_spool.files.list_dir("team@example.net")
    assert {p.name for p in listdir.iterdir()} >= set(SUB_DIRS) - {"queue/discarded"} | {"index", "text"}
    # mlmmjadmin has no rename: the old list went to its archive.
    archived = tree(list_spool.files.archive_dir)
    assert bool(archived) == (list_spool.name == "mlmmjadmin")


def test_rename_refuses_a_taken_name_and_a_missing_list(list_spool):
    spool = list_spool.spool
    spool.create(LIST, {})
    spool.create("team@example.com", {"subject_prefix": "[t]"})
    before = whole(list_spool)
    with pytest.raises(AlreadyExists):
        spool.rename(LIST, "team@example.com")
    with pytest.raises(NoSuchAccount):
        spool.rename("nobody@example.com", "new@example.com")
    assert whole(list_spool) == before


# -- missing lists and bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda s: s.profile(LIST),
    lambda s: s.update(LIST, {"subject_prefix": "[x]"}),
    lambda s: s.update(LIST, {"moderated": "no"}),
    lambda s: s.update(LIST, {}),
    lambda s: s.add_subscribers(LIST, ["alice@example.org"]),
    lambda s: s.add_subscribers(LIST, []),
    lambda s: s.remove_subscribers(LIST, ["alice@example.org"]),
    lambda s: s.remove_subscribers(LIST, ["ALL"]),
    lambda s: s.rename(LIST, "new@example.com"),
], ids=["profile", "update", "update-flag-off", "update-nothing", "add", "add-none", "remove", "remove-all",
        "rename"])
def test_a_missing_list_is_no_such_account_and_nothing_is_written(list_spool, call):
    with pytest.raises(NoSuchAccount):
        call(list_spool.spool)
    assert whole(list_spool) == {}


def test_a_missing_list_has_no_subscribers_and_does_not_exist(list_spool):
    assert list_spool.spool.subscribers(LIST) == []
    assert list_spool.spool.exists(LIST) is False


BAD_CALLS = {
    "unknown-parameter": lambda s: s.update(LIST, {"colour": "red"}),
    "flag-not-yes-no": lambda s: s.update(LIST, {"moderated": "true"}),
    "bad-moderator": lambda s: s.update(LIST, {"moderators": "mod@example.com,not-an-address"}),
    "size-not-a-number": lambda s: s.update(LIST, {"max_message_size": "10k"}),
    "port-out-of-range": lambda s: s.update(LIST, {"smtp_port": "70000"}),
    "prefix-with-newline": lambda s: s.update(LIST, {"subject_prefix": "[x]\nmoderated"}),
    "owner-with-newline": lambda s: s.update(LIST, {"owner": "a@example.com\nb@example.com"}),
    "header-without-colon": lambda s: s.update(LIST, {"custom_headers": "X-Ok: 1\nnot a header"}),
    "bad-relay-host": lambda s: s.update(LIST, {"relay_host": "host name; rm"}),
    "create-flag-not-yes-no": lambda s: s.create("new@example.com", {"tocc": "1"}),
    "create-dotdot": lambda s: s.create("..@example.com", {}),
    "create-slash": lambda s: s.create("a/b@example.com", {}),
    "create-domain-escape": lambda s: s.create("x@../../etc", {}),
    "create-dot-domain": lambda s: s.create("x@.example.com", {}),
    "create-no-at": lambda s: s.create("example.com", {}),
    "create-nul": lambda s: s.create("a\x00b@example.com", {}),
    "subscription-kind": lambda s: s.add_subscribers(LIST, ["a@example.org"], subscription="weekly"),
    "bad-subscriber": lambda s: s.add_subscribers(LIST, ["good@example.org", "bad"]),
    "bad-unsubscriber": lambda s: s.remove_subscribers(LIST, ["../x"]),
    "rename-to-bad": lambda s: s.rename(LIST, "../x@example.com"),
    "delete-escape": lambda s: s.delete("../../x@example.com", archive=False),
    "exists-escape": lambda s: s.exists("..@example.com"),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_input_is_refused_and_nothing_is_written(list_spool, name):
    spool = list_spool.spool
    spool.create(LIST, {})
    before = whole(list_spool)
    if list_spool.fake:
        list_spool.fake.clear()
    with pytest.raises(InvalidInput):
        BAD_CALLS[name](spool)
    assert whole(list_spool) == before
    if list_spool.fake:
        assert list_spool.fake.recorded() == []        # nothing was even sent


# -- the model's API parameters ---------------------------------------------------------------------------------

def test_the_api_parameters_come_from_the_table_and_parse_into_a_form():
    params = mp.PROFILE_PARAMSET
    assert [p.name for p in params.params] == [p.name for p in mp.PROFILE_PARAMS]
    assert all(p.summary for p in params.params)
    parsed = params.parse({"moderated": "true", "owners": "A@Example.com", "subject_prefix": "[x] ",
                           "max_message_size": "100", "custom_headers": "X-A: 1\nX-B: 2",
                           "remove_headers": "Received"})
    assert mp.form_of(parsed) == {"moderated": "yes", "owner": "a@example.com", "subject_prefix": "[x] ",
                                  "max_message_size": "100", "custom_headers": "X-A: 1\nX-B: 2",
                                  "remove_headers": "Received"}
    for bad in ({"moderated": "perhaps"}, {"moderators": "x"}, {"smtp_port": "0"}, {"name": "a\nb"},
                {"footer_text": "a\x07b"}):
        with pytest.raises(InvalidInput):
            params.parse(bad)
    assert {p.name for p in params.params if p.global_only} == {"relay_host", "smtp_port", "smtp_helo"}


# -- choosing the backend from the settings -----------------------------------------------------------------

def test_list_spool_of_the_settings(tmp_path):
    default = list_spool_of(make_settings(tmp_path, mlmmjadmin_api_auth_token="tok"))
    assert isinstance(default, MlmmjadminClient)
    assert (default.base_url, default.header, default.token) == ("http://127.0.0.1:7790/api",
                                                                  "X-MLMMJADMIN-API-AUTH-TOKEN", "tok")
    local = list_spool_of(make_settings(tmp_path, mlmmj_backend="local", mlmmj_spool_dir="/srv/mlmmj",
                                        mlmmj_archive_dir=""))
    assert isinstance(local, LocalSpool)
    assert (local.spool_dir, local.archive_dir, local.skel_dir) == (Path("/srv/mlmmj"), None,
                                                                    Path("/usr/share/mlmmj/text.skel"))
    assert local.defaults["smtp_port"] == "10027"
    s = Settings()
    assert (s.mlmmj_spool_dir, s.mlmmj_archive_dir, s.mlmmj_mta_transport_name, s.mlmmjadmin_api_verify_ssl) == \
        ("/var/vmail/mlmmj", "/var/vmail/mlmmj-archive", "mlmmj", False)


@pytest.mark.parametrize("setting, value", [
    ("mlmmj_backend", "ezmlm"), ("mlmmjadmin_api_base_url", "127.0.0.1:7790/api"),
    ("mlmmjadmin_api_auth_header", "X Token"), ("mlmmj_spool_dir", "var/vmail/mlmmj"),
    ("mlmmj_archive_dir", "relative"), ("mlmmj_mta_transport_name", "ml mmj"), ("mlmmjadmin_api_timeout", "0"),
])
def test_bad_mlmmj_settings_name_the_setting(tmp_path, setting, value):
    with pytest.raises(ConfigError, match=setting.upper()):
        make_settings(tmp_path, **{setting: value})


def test_iredadmins_mlmmjadmin_settings_carry_over():
    from iredldap.iredadmin_settings import convert

    source = ("mlmmjadmin_api_auth_token = 'tok'\nMLMMJADMIN_API_BASE_URL = 'https://lists.example.com:7790/api'\n"
              "MLMMJADMIN_API_VERIFY_SSL = True\nMLMMJ_MTA_TRANSPORT_NAME = 'mlmmj2'\n")
    values = convert(source).values
    assert {k: v for k, v in values.items() if "mlmmj" in k} == {
        "mlmmjadmin_api_auth_token": "tok", "mlmmjadmin_api_base_url": "https://lists.example.com:7790/api",
        "mlmmjadmin_api_verify_ssl": "yes", "mlmmj_mta_transport_name": "mlmmj2"}


def test_concurrent_subscriber_changes_lose_nothing(local_spool):
    import threading

    local_spool.create(LIST, {})
    local_spool.add_subscribers(LIST, [f"a-old{i}@example.org" for i in range(20)])
    errors: list[BaseException] = []

    def add(n: int) -> None:
        try:
            for i in range(10):
                local_spool.add_subscribers(LIST, [f"a-{n}-{i}@example.org"])
        except BaseException as exc:       # noqa: BLE001 - reported below
            errors.append(exc)

    def remove() -> None:
        try:
            for i in range(20):
                local_spool.remove_subscribers(LIST, [f"a-old{i}@example.org"])
        except BaseException as exc:       # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)] + [threading.Thread(target=remove)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not any(t.is_alive() for t in threads)
    stored = (local_spool.list_dir(LIST) / "subscribers.d" / "a").read_text().split()
    assert sorted(stored) == sorted(f"a-{n}-{i}@example.org" for n in range(6) for i in range(10))


# -- the local spool's own failures -----------------------------------------------------------------------

def test_local_spool_ping_and_a_missing_spool_or_skel(tmp_path):
    from iredldap.errors import ListSpoolError, ListSpoolUnavailable

    good = LocalSpool(tmp_path, "", DEBIAN_SKEL)
    good.ping()
    gone = LocalSpool(tmp_path / "missing", "", DEBIAN_SKEL)
    for call in (gone.ping, lambda: gone.create(LIST, {})):
        with pytest.raises(ListSpoolUnavailable):
            call()
    no_texts = LocalSpool(tmp_path, "", tmp_path / "no-skel")
    with pytest.raises(ListSpoolUnavailable):
        no_texts.ping()
    with pytest.raises(ListSpoolError) as caught:
        no_texts.create(LIST, {})
    assert caught.value.code == "SKEL_DIR_NOT_EXIST"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_require_confirm_without_mlmmj_sub_is_an_error_and_adds_nobody(tmp_path):
    from iredldap.errors import ListSpoolError

    spool = LocalSpool(tmp_path, "", DEBIAN_SKEL, mlmmj_sub=str(tmp_path / "no-such-mlmmj-sub"))
    spool.create(LIST, {})
    before = tree(tmp_path)
    with pytest.raises(ListSpoolError) as caught:
        spool.add_subscribers(LIST, ["alice@example.org"], require_confirm=True)
    assert caught.value.code == "SUB_COMMAND_NOT_FOUND"
    assert tree(tmp_path) == before


def test_archive_beside_the_list_when_no_archive_dir(tmp_path):
    spool = LocalSpool(tmp_path, "", DEBIAN_SKEL)
    spool.create(LIST, {})
    where = Path(spool.delete(LIST, archive=True) or "")
    assert where.parent == tmp_path / "example.com" and (where / "sales" / "control" / "listaddress").is_file()


def test_a_broken_list_directory_is_unavailable_not_a_crash(local_spool):
    from iredldap.errors import ListSpoolUnavailable

    local_spool.create(LIST, {})
    listdir = local_spool.list_dir(LIST)
    (listdir / "subscribers.d").rmdir()
    (listdir / "subscribers.d").write_text("not a folder")       # as a broken disk might leave it
    with pytest.raises(ListSpoolUnavailable, match="subscribers.d"):
        local_spool.add_subscribers(LIST, ["alice@example.org"])
    (listdir / "control" / "prefix").mkdir()                       # a file cannot replace a folder
    with pytest.raises(ListSpoolUnavailable):
        local_spool.update(LIST, {"subject_prefix": "[x]"})


def test_a_half_built_list_of_a_crash_is_cleared_by_the_next_create(local_spool):
    import os
    import time

    domain_dir = local_spool.spool_dir / "example.com"
    stale = domain_dir / ".iredldap-sales.0123456789ab"
    (stale / "control").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    young = domain_dir / ".iredldap-sales.ba9876543210"
    young.mkdir()
    local_spool.create(LIST, {})
    assert sorted(p.name for p in domain_dir.iterdir()) == [young.name, "sales"]
