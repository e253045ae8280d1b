"""Handoffs as the model would write them, for the fake model to answer with."""

# For corpus ticket 104512: the screenshots, the browser tests and bench/streaming.py.
READY_PAYLOAD = {
    "tried": [
        {
            "action": "Cleared the Office credentials in Credential Manager",
            "result": "prompted again within 5 minutes",
        },
        {"action": "Built a new Outlook profile ('Dana2')", "result": "prompts after ~10 minutes"},
        {"action": "Reset the AAD BrokerPlugin folder", "result": "no change"},
        {"action": "Ran dsregcmd /status", "result": "DeviceAuthStatus FAILED"},
    ],
    "open_questions": ["Will the svc-cleanup runbook disable KV-LT-0231 again tonight?"],
    "summary_prose": (
        "Dana Whitfield's Outlook asks for her password every 10-15 minutes since yesterday; "
        "webmail and Teams work. Kiran cleared the stored Office credentials and built a new "
        "Outlook profile: the prompt came back within minutes both times.\n\n"
        "Her laptop KV-LT-0231 shows Disabled in Entra since 2/5, disabled by svc-cleanup (the "
        "stale-device runbook), and dsregcmd reports DeviceAuthStatus FAILED. She has "
        "depositions today."
    ),
    "what_we_know": [
        "Prompts every 10-15 minutes in Outlook (M365 Apps 2401); OWA and Teams work",
        "Clearing Credential Manager entries did not help",
        "A new Outlook profile ('Dana2') did not help",
        "KV-LT-0231 is Disabled in Entra since 2/5, by svc-cleanup",
        "dsregcmd /status: DeviceAuthStatus FAILED",
    ],
    "likely_cause": (
        "The stale-device runbook disabled KV-LT-0231 in Entra, so the device can no longer get "
        "a token and Outlook falls back to the basic password prompt."
    ),
    "suggested_steps": [
        "Re-enable KV-LT-0231 in Entra ID (Devices > All devices)",
        "Exclude KV-LT-0231 from the svc-cleanup runbook's next run",
        "Run dsregcmd /refreshprt on the laptop and restart Outlook",
    ],
    "confidence": "high",
}
