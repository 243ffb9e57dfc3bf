"""The bundled dataset: customer churn for a subscription business.

A seeded, vectorized generator (1M rows in a few seconds) of a realistic tabular problem:

* 22 features of mixed kinds: numeric (skewed, with outliers), integer counts, categorical with
  a long tail (``country``: 60 values, Zipf-distributed), booleans and timestamps;
* realistic missing values (``nps_score`` ~35 %, ``avg_session_minutes`` ~8 %, ``age`` ~5 %,
  ``total_charges`` for customers in their first month) and outliers (data-entry ``age`` values,
  heavy-tailed charges);
* an entity id (``customer_id``) and an event time (``event_time``), sorted, so batches are
  time-ordered windows;
* a binary target ``churned`` (about 15-25 % positives) and a regression target
  ``next_month_spend``.

The label relation (log-odds of churn), with ``sigmoid`` the logistic function::

    logit = b0
      + 1.8 * sigmoid((days_since_last_login - 21) / 5)       # inactive for ~3 weeks: churn
      - 0.45 * log1p(sessions_last_30d)                        # engagement retains
      + 0.55 * support_tickets_90d * [plan == basic]           # basic users leave over problems
      + 0.15 * support_tickets_90d * [plan != basic]
      - 1.3 * annual_contract - 0.5 * autopay
      + 1.2 * last_payment_failed
      - 0.35 * log1p(tenure_months)
      + 1.5 * max(price_ratio - 1.2, 0)                        # paying well above list price
      - 0.15 * (nps_score - 6)      (0 where nps_score is missing)
      + channel effect (affiliate +0.4, paid_social +0.2, referral -0.4)

so churn rises with inactivity, tickets, failed payments and overpaying, and falls with sessions,
tenure, contracts, autopay and NPS. ``customer_id`` has no effect.

Drift knobs (:class:`loopml.config.DriftConfig`):

* covariate shift: ``{feature: strength}``; numeric features move by ``strength`` standard
  deviations, categorical ones move ``strength`` of their mass to the reversed frequency order.
  The label relation is unchanged (P(y|x) fixed), so only the inputs drift.
* concept shift ``c`` in [0, 1]: the relation blends toward one in which inactivity no longer
  matters, engaged users leave (a competitor courts them), and price matters more:
  ``logit += c * (-1.8 * sigmoid(...) + 0.9 * log1p(sessions_last_30d)
  + 3.0 * max(price_ratio - 1, 0) + 0.8 * [device == android] - 2.9)``; the constant keeps the
  churn rate about where it was, so class balance alone does not reveal the shift.

``next_month_spend = monthly_charges * (1 - 0.9 * p_churn) * (1 + 0.05 * num_devices)
+ 2 * log1p(sessions_last_30d) + noise``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.config import ColumnKind, DriftConfig

PLANS = ["basic", "standard", "premium", "enterprise"]
PLAN_PROBS = [0.45, 0.33, 0.17, 0.05]
PLAN_PRICE = np.array([9.99, 15.99, 22.99, 49.99])
CHANNELS = ["organic", "paid_search", "paid_social", "referral", "partner", "affiliate", "email"]
CHANNEL_PROBS = [0.34, 0.22, 0.14, 0.12, 0.08, 0.06, 0.04]
CHANNEL_EFFECT = np.array([0.0, 0.05, 0.2, -0.4, 0.0, 0.4, -0.1])
DEVICES = ["web", "ios", "android", "smart_tv", "console"]
DEVICE_PROBS = [0.35, 0.28, 0.25, 0.09, 0.03]
PAYMENTS = ["card", "paypal", "bank_transfer", "gift_card", "crypto"]
PAYMENT_PROBS = [0.62, 0.2, 0.12, 0.05, 0.01]
COUNTRIES = (  # noqa: SIM905 (60 codes on three lines, not sixty)
    "US GB DE FR CA BR IN ES IT MX AU NL SE PL JP KR AR CO CL TR BE CH AT NO DK FI IE "
    "PT CZ RO HU GR IL ZA NG EG KE MA SA AE SG MY TH VN ID PH NZ PE EC UY UA BG HR RS "
    "SK SI LT LV EE IS"
).split()

# The schema of the generated table, as declared in params.yaml.
SCHEMA: dict[str, ColumnKind] = {
    "customer_id": "integer",
    "event_time": "datetime",
    "signup_date": "datetime",
    "tenure_months": "numeric",
    "plan": "categorical",
    "country": "categorical",
    "acquisition_channel": "categorical",
    "device": "categorical",
    "payment_method": "categorical",
    "monthly_charges": "numeric",
    "total_charges": "numeric",
    "sessions_last_30d": "integer",
    "avg_session_minutes": "numeric",
    "days_since_last_login": "numeric",
    "support_tickets_90d": "integer",
    "discount_pct": "numeric",
    "num_devices": "integer",
    "referrals": "integer",
    "age": "numeric",
    "nps_score": "numeric",
    "autopay": "boolean",
    "annual_contract": "boolean",
    "paperless_billing": "boolean",
    "last_payment_failed": "boolean",
    "churned": "boolean",
    "next_month_spend": "numeric",
}

_BASE_LOGIT = -0.4
_CONCEPT_CENTER = 2.9


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _categorical(
    rng: np.random.Generator, n: int, probs: list[float] | np.ndarray, shift: float
) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    p = p / p.sum()
    if shift:
        p = (1.0 - shift) * p + shift * p[::-1]
    return rng.choice(len(p), size=n, p=p)


def _shift(x: np.ndarray, strength: float) -> np.ndarray:
    if not strength:
        return x
    return x + strength * np.nanstd(x)


def churn_logit(frame: pd.DataFrame, concept: float = 0.0) -> np.ndarray:
    """The documented log-odds of churn for rows of the generated table (missing NPS = 0 effect)."""
    plan = frame["plan"].to_numpy(dtype=object)
    basic = plan == "basic"
    price = frame["plan"].map(dict(zip(PLANS, PLAN_PRICE, strict=True))).to_numpy(dtype=float)
    price_ratio = frame["monthly_charges"].to_numpy(dtype=float) / price
    tickets = frame["support_tickets_90d"].to_numpy(dtype=float)
    nps = frame["nps_score"].to_numpy(dtype=float)
    channel = (
        frame["acquisition_channel"]
        .map(dict(zip(CHANNELS, CHANNEL_EFFECT, strict=True)))
        .to_numpy(dtype=float)
    )
    inactive = _sigmoid((frame["days_since_last_login"].to_numpy(dtype=float) - 21.0) / 5.0)
    logit = (
        _BASE_LOGIT
        + 1.8 * inactive
        - 0.45 * np.log1p(frame["sessions_last_30d"].to_numpy(dtype=float))
        + np.where(basic, 0.55, 0.15) * tickets
        - 1.3 * frame["annual_contract"].to_numpy(dtype=float)
        - 0.5 * frame["autopay"].to_numpy(dtype=float)
        + 1.2 * frame["last_payment_failed"].to_numpy(dtype=float)
        - 0.35 * np.log1p(frame["tenure_months"].to_numpy(dtype=float))
        + 1.5 * np.maximum(price_ratio - 1.2, 0.0)
        - 0.15 * np.nan_to_num(nps - 6.0, nan=0.0)
        + channel
    )
    if concept:
        android = frame["device"].to_numpy(dtype=object) == "android"
        sessions = np.log1p(frame["sessions_last_30d"].to_numpy(dtype=float))
        logit = logit + concept * (
            -1.8 * inactive
            + 0.9 * sessions
            + 3.0 * np.maximum(price_ratio - 1.0, 0.0)
            + 0.8 * android
            - _CONCEPT_CENTER  # keeps the churn rate about where it was: only the relation moves
        )
    return logit


def _accounts(
    rng: np.random.Generator, n: int, start: str, days: float, cov: dict[str, float]
) -> dict[str, np.ndarray]:
    """Event times, plans, tenure and the categorical profile of each customer."""
    t0 = pd.Timestamp(start)
    offsets = np.sort(rng.uniform(0.0, days * 86_400.0, n))
    event_time = (t0 + pd.to_timedelta(offsets, unit="s")).floor("s")  # event logs keep seconds
    plan_code = _categorical(rng, n, PLAN_PROBS, cov.get("plan", 0.0))
    tenure_days = np.where(rng.random(n) < 0.15, rng.uniform(0, 30, n), rng.gamma(1.6, 300.0, n))
    tenure_days = np.maximum(_shift(tenure_days, cov.get("tenure_months", 0.0)), 0.0)
    zipf = 1.0 / np.arange(1, len(COUNTRIES) + 1) ** 1.15
    return {
        "event_time": event_time,
        "plan_code": plan_code,
        "tenure_days": tenure_days,
        "signup_date": event_time - pd.to_timedelta(np.round(tenure_days), unit="D"),
        "country_code": _categorical(rng, n, zipf, cov.get("country", 0.0)),
        "channel_code": _categorical(rng, n, CHANNEL_PROBS, cov.get("acquisition_channel", 0.0)),
        "device_code": _categorical(rng, n, DEVICE_PROBS, cov.get("device", 0.0)),
        "payment_code": _categorical(rng, n, PAYMENT_PROBS, cov.get("payment_method", 0.0)),
    }


def _billing(
    rng: np.random.Generator, n: int, acc: dict[str, np.ndarray], cov: dict[str, float]
) -> dict[str, np.ndarray]:
    """Engagement (latent), monthly and total charges with spikes and missing totals."""
    engagement = rng.normal(0.0, 1.0, n)
    monthly = PLAN_PRICE[acc["plan_code"]] * rng.lognormal(0.0, 0.22, n) + rng.exponential(2.0, n)
    spikes = rng.random(n) < 0.002
    monthly[spikes] *= rng.uniform(5, 15, spikes.sum())
    monthly = np.maximum(_shift(monthly, cov.get("monthly_charges", 0.0)), 0.5)
    tenure_months = acc["tenure_days"] / 30.44
    total = monthly * tenure_months * rng.uniform(0.9, 1.1, n)
    total[(tenure_months < 1.0) | (rng.random(n) < 0.01)] = np.nan
    return {"engagement": engagement, "monthly": monthly, "total": total}


def _activity(
    rng: np.random.Generator,
    n: int,
    engagement: np.ndarray,
    plan_code: np.ndarray,
    cov: dict[str, float],
) -> dict[str, np.ndarray]:
    """Sessions, minutes, last login (with dormant outliers), tickets, discounts, devices."""
    sessions = rng.poisson(np.exp(2.3 + 0.6 * engagement + cov.get("sessions_last_30d", 0.0)))
    minutes = rng.gamma(2.0, 9.0 * np.exp(0.25 * engagement))
    minutes = _shift(minutes, cov.get("avg_session_minutes", 0.0))
    minutes[rng.random(n) < 0.08] = np.nan
    login = rng.exponential(9.0 * np.exp(-0.7 * engagement))
    login = np.maximum(_shift(login, cov.get("days_since_last_login", 0.0)), 0.0)
    stale = rng.random(n) < 0.001  # dormant accounts: heavy right tail
    login[stale] = rng.uniform(365.0, 2000.0, int(stale.sum()))
    tickets = rng.poisson(0.5 + 0.3 * (plan_code == 0) + cov.get("support_tickets_90d", 0.0))
    discount = np.where(rng.random(n) < 0.7, 0.0, np.round(rng.uniform(5, 40, n)))
    discount = np.clip(_shift(discount, cov.get("discount_pct", 0.0)), 0.0, 90.0)
    return {
        "sessions": sessions,
        "minutes": minutes,
        "login": login,
        "tickets": tickets,
        "discount": discount,
        "devices": 1 + rng.poisson(0.8 + 0.4 * (plan_code >= 2)),
        "referrals": rng.poisson(0.3, n),
    }


def _person(
    rng: np.random.Generator,
    n: int,
    engagement: np.ndarray,
    plan_code: np.ndarray,
    cov: dict[str, float],
) -> dict[str, np.ndarray]:
    """Age (with data-entry errors), NPS (often missing) and the contract flags."""
    age = np.clip(rng.normal(38.0, 12.0, n), 16, 90)
    age = _shift(age, cov.get("age", 0.0))
    age[rng.random(n) < 0.0005] = 999.0  # data-entry errors
    age[rng.random(n) < 0.05] = np.nan
    nps = np.clip(np.round(rng.normal(6.5 + 1.0 * engagement, 2.0)), 0, 10)
    nps = _shift(nps, cov.get("nps_score", 0.0))
    nps[rng.random(n) < 0.35] = np.nan
    autopay = rng.random(n) < 0.6 + cov.get("autopay", 0.0)
    annual = rng.random(n) < np.array([0.1, 0.25, 0.35, 0.7])[plan_code]
    paperless = rng.random(n) < 0.72
    failed = rng.random(n) < np.where(autopay, 0.03, 0.09)
    return {
        "age": age,
        "nps": nps,
        "autopay": autopay,
        "annual": annual,
        "paperless": paperless,
        "failed": failed,
    }


def _frame(id_start: int, n: int, acc: dict, bill: dict, act: dict, per: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.arange(id_start, id_start + n, dtype=np.int64),
            "event_time": acc["event_time"],
            "signup_date": acc["signup_date"].floor("D"),
            "tenure_months": np.round(acc["tenure_days"] / 30.44, 2),
            "plan": pd.Categorical.from_codes(acc["plan_code"], PLANS),
            "country": pd.Categorical.from_codes(acc["country_code"], COUNTRIES),
            "acquisition_channel": pd.Categorical.from_codes(acc["channel_code"], CHANNELS),
            "device": pd.Categorical.from_codes(acc["device_code"], DEVICES),
            "payment_method": pd.Categorical.from_codes(acc["payment_code"], PAYMENTS),
            "monthly_charges": np.round(bill["monthly"], 2),
            "total_charges": np.round(bill["total"], 2),
            "sessions_last_30d": act["sessions"].astype(np.int64),
            "avg_session_minutes": np.round(act["minutes"], 1),
            "days_since_last_login": np.round(act["login"], 1),
            "support_tickets_90d": act["tickets"].astype(np.int64),
            "discount_pct": act["discount"],
            "num_devices": act["devices"].astype(np.int64),
            "referrals": act["referrals"].astype(np.int64),
            "age": np.round(per["age"]),
            "nps_score": per["nps"],
            "autopay": per["autopay"],
            "annual_contract": per["annual"],
            "paperless_billing": per["paperless"],
            "last_payment_failed": per["failed"],
        }
    )


def generate_churn(
    n_rows: int,
    seed: int = 42,
    start: str = "2024-01-01",
    days: float = 30.0,
    id_start: int = 1,
    drift: DriftConfig | None = None,
) -> pd.DataFrame:
    """Generate ``n_rows`` customers observed between ``start`` and ``start + days``."""
    if n_rows <= 0:
        raise ValueError("n_rows must be positive")
    drift = drift or DriftConfig()
    unknown = set(drift.covariate) - set(SCHEMA)
    if unknown:
        raise ValueError(f"drift.covariate names unknown feature(s): {sorted(unknown)}")
    cov, n = drift.covariate, n_rows
    rng = np.random.default_rng(seed)
    acc = _accounts(rng, n, start, days, cov)
    bill = _billing(rng, n, acc, cov)
    act = _activity(rng, n, bill["engagement"], acc["plan_code"], cov)
    per = _person(rng, n, bill["engagement"], acc["plan_code"], cov)
    frame = _frame(id_start, n, acc, bill, act, per)
    p_churn = _sigmoid(churn_logit(frame, concept=drift.concept))
    frame["churned"] = rng.random(n) < p_churn
    spend = (
        frame["monthly_charges"].to_numpy() * (1 - 0.9 * p_churn) * (1 + 0.05 * act["devices"])
        + 2.0 * np.log1p(act["sessions"])
        + rng.normal(0.0, 2.0, n)
    )
    frame["next_month_spend"] = np.round(np.maximum(spend, 0.0), 2)
    # Categorical dtype is an implementation detail: snapshots carry plain strings.
    for col in ("plan", "country", "acquisition_channel", "device", "payment_method"):
        frame[col] = frame[col].astype(str)
    return frame
