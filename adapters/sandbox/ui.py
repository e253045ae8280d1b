"""The sandbox PSA's own pages: the tickets, and the button a junior presses to escalate.

This is the demo's stand-in for the PSA's ticket screen; Jinja escapes every field.
"""

from __future__ import annotations

from flask import Flask, abort, redirect, render_template_string, request

from adapters.sandbox.store import NotInSandbox, SandboxStore

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox PSA</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:2rem;max-width:70rem}
 table{border-collapse:collapse;width:100%}
 td,th{padding:.4rem;border-bottom:1px solid #ddd;text-align:left}
 .escalated{color:#b00;font-weight:600} pre{white-space:pre-wrap;background:#f6f6f6;padding:.6rem}
 button{cursor:pointer}
</style></head><body>
{% if ticket %}
 <p><a href="{{ root }}/">&larr; all tickets</a></p>
 <h1>#{{ ticket.id }} {{ ticket.summary }}</h1>
 <p>{{ ticket.company }} &middot; {{ ticket.board }} &middot;
    <span class="{{ 'escalated' if ticket.status == 'Escalated' else '' }}">
    {{ ticket.status }}</span></p>
 {% if ticket.status == 'Escalated' %}
  <form method="post" action="{{ root }}/tickets/{{ ticket.id }}/resolve">
   <label>What fixed it<br>
    <textarea name="resolution" rows="3" cols="80" required></textarea></label>
   <br><button type="submit">Resolve as sseniorr</button></form>
 {% endif %}
 {% for note in notes %}
  <h3>{{ note.author }} &middot; {{ note.created }}
      {% if note.internal %} &middot; internal{% endif %}
      {% if note.resolution %} &middot; resolution{% endif %}</h3>
  <pre>{{ note.text }}</pre>
 {% endfor %}
{% else %}
 <h1>Sandbox PSA</h1>
 <p>A simulated PSA. Press <b>Escalate</b> to do what a junior technician does:
    the ticket moves to "Escalated" and the PSA calls Baton.</p>
 <table><tr><th>Ticket</th><th>Company</th><th>Status</th><th></th></tr>
 {% for t in tickets %}
  <tr><td><a href="{{ root }}/tickets/{{ t.id }}">#{{ t.id }} {{ t.summary }}</a></td>
      <td>{{ t.company }}</td>
      <td class="{{ 'escalated' if t.status == 'Escalated' else '' }}">{{ t.status }}</td>
      <td>{% if t.status != 'Escalated' %}
        <form method="post" action="{{ root }}/tickets/{{ t.id }}/escalate">
          <button type="submit">Escalate as {{ t.escalated_by or 'kpatel' }}</button></form>
      {% endif %}</td></tr>
 {% endfor %}
 </table>
{% endif %}
</body></html>"""


def create_ui_app(store: SandboxStore) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def tickets():
        return render_template_string(
            PAGE, tickets=store.tickets(), ticket=None, root=request.script_root
        )

    @app.get("/tickets/<int:ticket_id>")
    def ticket(ticket_id: int):
        try:
            found = store.ticket(ticket_id)
        except NotInSandbox:
            abort(404)
        return render_template_string(
            PAGE, ticket=found, notes=store.notes(ticket_id), root=request.script_root
        )

    @app.post("/tickets/<int:ticket_id>/escalate")
    def escalate(ticket_id: int):
        """Escalate as the corpus's junior, with the corpus's reason (or the given ones)."""
        try:
            found = store.ticket(ticket_id)
        except NotInSandbox:
            abort(404)
        data = request.get_json(silent=True) or request.form
        member = data.get("member") or found.escalated_by or "kpatel"
        reason = data.get("reason") or found.escalation_reason or None
        store.escalate(ticket_id, member=member, reason=reason)
        if request.is_json:
            return {"ticket": ticket_id, "status": "Escalated", "member": member}
        return redirect(f"{request.script_root}/tickets/{ticket_id}", code=303)

    @app.post("/tickets/<int:ticket_id>/resolve")
    def resolve(ticket_id: int):
        """What a senior does when it is fixed: a resolution note, and the ticket closed."""
        try:
            store.ticket(ticket_id)
        except NotInSandbox:
            abort(404)
        data = request.get_json(silent=True) or request.form
        resolution = str(data.get("resolution") or "").strip()
        if not resolution:
            return {"error": {"code": "invalid", "message": "resolution is required"}}, 400
        member = data.get("member") or "sseniorr"
        store.resolve(ticket_id, resolution, member=member)
        if request.is_json:
            return {"ticket": ticket_id, "status": "Resolved", "member": member}
        return redirect(f"{request.script_root}/tickets/{ticket_id}", code=303)

    return app
