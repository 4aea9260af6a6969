"""Production posture (issue 9 item 8): default secrets refused outside development, the gateway can seal
identity numbers but not open them, topic replication settings, and the broker ACLs generated from the topic
catalogue and the services' subscriptions."""
from __future__ import annotations

import pytest

from contracts.topics import DEAD_LETTER_REPLAYS, TOPICS, all_topic_names
from deploy.mesh import SERVICE_PORTS
from shared.registry import AGENCIES
from shared import kafka_acls, sealing
from shared.kafka import client_options
from shared.settings import (
    DEFAULT_ADMIN_TOKEN,
    DEV_CUSTOMS_SEALING_PRIVATE_KEY,
    DEV_CUSTOMS_SEALING_PUBLIC_KEY,
    DEVELOPMENT_ENVS,
    Settings,
)

ID_NUMBER = "110101199003070011"
PUBLIC, PRIVATE = sealing.keygen()
# What docker-compose.yml gives each service (secrets from the deployment's environment).
SAFE = {"sw_admin_token": "an-operator-secret"}
GATEWAY_ENV = {**SAFE, "sw_customs_sealing_public_key": PUBLIC, "sw_gateway_fingerprint_key": "a-fingerprint-secret"}
CUSTOMS_ENV = {**SAFE, "sw_customs_sealing_private_key": PRIVATE, "sw_customs_pseudonym_key": "a-pseudonym-secret"}


def settings_for(env: str, **values) -> Settings:
    return Settings(sw_env=env, **values)


# --- SW_ENV: only development values accept the defaults -------------------------------------------

@pytest.mark.parametrize("env", sorted(DEVELOPMENT_ENVS) + ["Development", " dev ", "TEST"])
def test_development_environments_accept_the_defaults(env):
    for service in [*SERVICE_PORTS, None]:
        settings_for(env).refuse_unsafe_production_defaults(service)


@pytest.mark.parametrize("env", ["production", "Production", "prod", "staging", "preprod", "qa", "", "developmnet"])
@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_any_other_environment_refuses_the_default_admin_token(env, service):
    with pytest.raises(SystemExit, match="SW_ADMIN_TOKEN"):
        settings_for(env).refuse_unsafe_production_defaults(service)
    with pytest.raises(SystemExit, match="SW_ADMIN_TOKEN"):
        settings_for(env, sw_admin_token=" ").refuse_unsafe_production_defaults(service)


@pytest.mark.parametrize("env", ["production", "staging"])
def test_outside_development_each_service_needs_exactly_its_own_secrets(env):
    gateway = settings_for(env, **GATEWAY_ENV)
    customs = settings_for(env, **CUSTOMS_ENV)
    gateway.refuse_unsafe_production_defaults("gateway")
    customs.refuse_unsafe_production_defaults("customs")
    for agency in set(AGENCIES) - {"customs"}:
        settings_for(env, **SAFE).refuse_unsafe_production_defaults(agency)  # no sealing key at all
    # the development keys are refused
    with pytest.raises(SystemExit, match="SW_CUSTOMS_SEALING_PUBLIC_KEY"):
        settings_for(env, **SAFE).refuse_unsafe_production_defaults("gateway")
    with pytest.raises(SystemExit, match="SW_CUSTOMS_SEALING_PRIVATE_KEY"):
        settings_for(env, **SAFE, sw_customs_pseudonym_key="x").refuse_unsafe_production_defaults("customs")
    with pytest.raises(SystemExit, match="SW_CUSTOMS_SEALING_PRIVATE_KEY"):
        settings_for(env, **{**CUSTOMS_ENV, "sw_customs_sealing_private_key": DEV_CUSTOMS_SEALING_PRIVATE_KEY}
                     ).refuse_unsafe_production_defaults("customs")
    with pytest.raises(SystemExit, match="SW_CUSTOMS_PSEUDONYM_KEY"):
        settings_for(env, **{**CUSTOMS_ENV, "sw_customs_pseudonym_key": "dev-customs-pseudonym-key"}
                     ).refuse_unsafe_production_defaults("customs")
    with pytest.raises(SystemExit, match="SW_GATEWAY_FINGERPRINT_KEY"):
        settings_for(env, **{**GATEWAY_ENV, "sw_gateway_fingerprint_key": "dev-gateway-fingerprint-key"}
                     ).refuse_unsafe_production_defaults("gateway")
    # the private key given to anyone but customs is refused
    for service in set(SERVICE_PORTS) - {"customs"}:
        with pytest.raises(SystemExit, match="only customs may hold it"):
            settings_for(env, **GATEWAY_ENV, sw_customs_sealing_private_key=PRIVATE
                         ).refuse_unsafe_production_defaults(service)


def test_every_problem_is_named_at_once():
    problems = settings_for("production").unsafe_defaults("customs")
    assert len(problems) == 3 and any("SW_ADMIN_TOKEN" in p for p in problems)
    assert settings_for("production", sw_admin_token=DEFAULT_ADMIN_TOKEN).unsafe_defaults(None)


def test_sasl_without_a_principal_is_refused_outside_development():
    s = settings_for("production", **SAFE, kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(SystemExit, match="KAFKA_SASL_USERNAME"):
        s.refuse_unsafe_production_defaults("tax")
    settings_for("production", **SAFE, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="tax",
                 kafka_sasl_password="pw").refuse_unsafe_production_defaults("tax")


# --- sealing: the gateway seals, customs alone opens ------------------------------------------------

def test_customs_opens_what_the_gateway_sealed():
    token = sealing.seal(ID_NUMBER, PUBLIC)
    assert ID_NUMBER not in token and sealing.unseal(token, PRIVATE) == ID_NUMBER
    assert sealing.seal(ID_NUMBER, PUBLIC) != token  # a fresh ephemeral key every time


def test_the_gateway_process_settings_cannot_unseal(monkeypatch):
    """The gateway as deployed (its environment from docker-compose.yml: public key only) seals with its own
    settings, and nothing in those settings opens the token: there is no private key to be found."""
    gateway = settings_for("production", **GATEWAY_ENV)
    gateway.refuse_unsafe_production_defaults("gateway")
    monkeypatch.setattr(sealing, "settings", lambda: gateway)
    token = sealing.seal(ID_NUMBER)
    assert gateway.customs_sealing_private_key() is None
    with pytest.raises(sealing.SealingKeyMissing):
        sealing.unseal(token)
    # every key the gateway's settings hold fails to open it, whatever way it is tried
    for value in gateway.model_dump().values():
        if isinstance(value, str) and value:
            with pytest.raises((sealing.CannotUnseal, ValueError)):
                sealing.unseal(token, value)
    # customs, with its own settings, opens it
    customs = settings_for("production", **CUSTOMS_ENV)
    monkeypatch.setattr(sealing, "settings", lambda: customs)
    assert sealing.unseal(token) == ID_NUMBER


def test_a_token_for_another_key_or_damaged_cannot_be_unsealed():
    token = sealing.seal(ID_NUMBER, PUBLIC)
    other_public, other_private = sealing.keygen()
    for bad_token, key in ((token, other_private), (token[:-4] + "AAAA", PRIVATE), ("not base64!", PRIVATE),
                           ("gAAAAABrB5BwpNYGKK6QnnHXruEc0nbuEKhVoKx_wdb27hYYecF3VIzEkFA0R7ICxXtMwus=", PRIVATE)):
        with pytest.raises(sealing.CannotUnseal):
            sealing.unseal(bad_token, key)


def test_the_development_keypair_matches_and_is_only_a_development_default():
    assert sealing.unseal(sealing.seal(ID_NUMBER, DEV_CUSTOMS_SEALING_PUBLIC_KEY), DEV_CUSTOMS_SEALING_PRIVATE_KEY) == ID_NUMBER
    assert settings_for("development").customs_sealing_private_key() == DEV_CUSTOMS_SEALING_PRIVATE_KEY
    assert settings_for("production").customs_sealing_private_key() is None


def test_keygen_command_prints_a_working_pair(capsys):
    assert sealing.main(["shared.sealing", "keygen"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    public, private = lines["SW_CUSTOMS_SEALING_PUBLIC_KEY"], lines["SW_CUSTOMS_SEALING_PRIVATE_KEY"]
    assert sealing.unseal(sealing.seal(ID_NUMBER, public), private) == ID_NUMBER
    with pytest.raises(ValueError, match="32 bytes"):
        sealing.seal(ID_NUMBER, "c2hvcnQ=")


def test_pseudonym_is_keyed_by_customs_own_key_not_the_sealing_key():
    assert sealing.pseudonym(ID_NUMBER, "k1") == sealing.pseudonym(ID_NUMBER, "k1") != sealing.pseudonym(ID_NUMBER, "k2")


# --- topics -------------------------------------------------------------------------------------------

def test_topics_are_created_with_the_replication_settings(monkeypatch):
    from shared import topics_admin  # noqa: PLC0415

    cluster = Settings(sw_topic_replication_factor=3, sw_topic_min_insync_replicas=2, sw_topic_partitions=6)
    monkeypatch.setattr(topics_admin, "settings", lambda: cluster)
    topics = topics_admin.new_topics(all_topic_names())
    assert {(t.num_partitions, t.replication_factor, t.topic_configs["min.insync.replicas"]) for t in topics} == {(6, 3, "2")}
    local = Settings()
    assert (local.sw_topic_replication_factor, local.sw_topic_min_insync_replicas) == (1, 1)


@pytest.mark.parametrize("field", ["sw_customs_sealing_public_key", "sw_customs_sealing_private_key"])
@pytest.mark.parametrize("value", ["abc", "c2hvcnQ=", PUBLIC + "AA"])
def test_a_malformed_sealing_key_is_refused_at_start(field, value):
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(**{field: value})
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(sw_customs_sealing_public_key="")
    assert Settings(sw_customs_sealing_private_key="").sw_customs_sealing_private_key == ""


def test_min_insync_replicas_cannot_exceed_the_replicas():
    with pytest.raises(ValueError, match="MIN_INSYNC"):
        Settings(sw_topic_replication_factor=2, sw_topic_min_insync_replicas=3)


def test_kafka_client_options_come_from_the_settings():
    assert client_options(Settings()) == {"security_protocol": "PLAINTEXT"}
    sasl = client_options(Settings(kafka_security_protocol="sasl_plaintext", kafka_sasl_username="fx",
                                   kafka_sasl_password="pw"))
    assert sasl == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "fx", "sasl_plain_password": "pw"}
    assert "ssl_context" in client_options(Settings(kafka_security_protocol="SASL_SSL"))


# --- ACLs ---------------------------------------------------------------------------------------------

def test_acls_cover_every_service_of_the_mesh():
    assert set(kafka_acls.SERVICES) == set(SERVICE_PORTS)


def test_each_service_writes_its_own_topics_and_the_dead_letters_of_what_it_consumes():
    subs = kafka_acls.subscriptions()
    acls = kafka_acls.acls_for(subs)
    for service in kafka_acls.SERVICES:
        principal = f"User:{service}"
        written = {a.resource for a in acls if a.principal == principal and a.operation == "WRITE"}
        read = {a.resource for a in acls if a.principal == principal and a.operation == "READ" and a.resource_type == "topic"}
        own = {t.name for t in TOPICS if t.writer == service}
        assert written == own | {f"{name}.dlq" for name in subs[service]} | {DEAD_LETTER_REPLAYS}
        assert read == set(subs[service]) | {f"{name}.dlq" for name in subs[service]} | {DEAD_LETTER_REPLAYS}
        # never another service's main topic
        assert not {t.name for t in TOPICS if t.writer != service} & written
        groups = {(a.resource, a.pattern) for a in acls if a.principal == principal and a.resource_type == "group"}
        assert groups == {(service, "literal"), (f"{service}-", "prefixed")}
    assert {a.operation for a in acls} == {"READ", "WRITE"}  # no CREATE, DELETE, ALTER, ALL


def test_spec_6_table_who_writes_what():
    acls = kafka_acls.acls_for(kafka_acls.subscriptions())
    writers = {}
    for a in acls:
        if a.operation == "WRITE" and not a.resource.endswith(".dlq") and a.resource != DEAD_LETTER_REPLAYS:
            writers.setdefault(a.resource, set()).add(a.principal)
    spec_6 = {
        "sw.enterprise.registered.v1": {"User:gateway"}, "sw.order.submitted.v1": {"User:gateway"},
        "sw.order.submitted.v2": {"User:gateway"}, "sw.payment.submitted.v1": {"User:gateway"},
        "sw.waybill.submitted.v1": {"User:gateway"}, "customs.decision.v1": {"User:customs"},
        "tax.assessment.v1": {"User:tax"}, "fx.settlement.v1": {"User:fx"},
        "logistics.status.v1": {"User:logistics"}, "credit.rating.v1": {"User:credit"},
        "sw.order.status_changed.v1": {"User:gateway"},  # spec §7.3: the gateway's own, for its webhooks
    }
    assert {topic: writers[topic] for topic in spec_6} == spec_6
    # an agency added since (services/*/service.toml) writes its own topics of the catalogue, alone
    assert {t: w for t, w in writers.items() if t not in spec_6} == {
        t.name: {f"User:{t.writer}"} for t in TOPICS if t.name not in spec_6}
