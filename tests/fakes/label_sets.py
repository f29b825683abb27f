"""Realistic label sets for tests of the Claude teacher: banking77's 77 intents (the bundled
sample) and a 150-intent set the size of CLINC150 (banking77's intents and 73 of other domains:
travel, home, work, small talk)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"

OTHER_DOMAINS = [
    "book_flight", "flight_status", "book_hotel", "car_rental", "travel_alert", "travel_suggestion",
    "international_visa", "plug_type", "lost_luggage", "carry_on", "exchange_rate_travel", "timezone",
    "translate", "weather", "alarm_set", "alarm_cancel", "timer", "reminder", "reminder_update",
    "calendar", "calendar_update", "meeting_schedule", "schedule_maintenance", "oil_change_how",
    "tire_pressure", "gas_type", "mpg", "jump_start", "uber", "traffic", "directions", "distance",
    "restaurant_reservation", "restaurant_reviews", "restaurant_suggestion", "recipe", "meal_suggestion",
    "nutrition_info", "calories", "cook_time", "ingredient_substitution", "shopping_list",
    "shopping_list_update", "order", "order_status", "play_music", "change_volume", "next_song",
    "smart_home", "lights_on", "thermostat", "spelling", "definition", "calculator", "measurement_conversion",
    "date", "time", "tell_joke", "fun_fact", "greeting", "goodbye", "thank_you", "who_made_you",
    "what_is_your_name", "how_old_are_you", "are_you_a_bot", "meaning_of_life", "pto_request",
    "pto_balance", "payday", "income", "taxes", "credit_score",
]


def banking77() -> list[str]:
    return list(json.loads((SAMPLE / "categories.json").read_text()))


def intents150() -> list[str]:
    labels = banking77() + OTHER_DOMAINS
    assert len(labels) == len(set(labels)) == 150
    return labels


def banking77_texts(n: int) -> list[str]:
    """The first ``n`` texts of the bundled banking77 sample (customer messages, up to ~400 characters)."""
    with (SAMPLE / "train.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // n)
    return [r["text"] for r in rows[::step][:n]]
