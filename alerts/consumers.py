"""Live toasts: every logged-in browser joins the 'alerts' group (alerts.services._toast publishes)."""
from dashboard.consumers import LoginRequiredConsumer


class AlertsConsumer(LoginRequiredConsumer):
    def subscriptions(self):
        return ["alerts"]

    async def alert_event(self, event):
        await self.send_json(event["payload"])
