from channels.generic.websocket import AsyncJsonWebsocketConsumer


class LoginRequiredConsumer(AsyncJsonWebsocketConsumer):
    """Base for every socket: refuses anonymous users before accepting."""

    groups_for_user: tuple[str, ...] = ()

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        for group in self.subscriptions():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            for group in self.subscriptions():
                await self.channel_layer.group_discard(group, self.channel_name)

    def subscriptions(self) -> list[str]:
        return []


class OverviewConsumer(LoginRequiredConsumer):
    def subscriptions(self):
        return ["overview"]

    async def market_update(self, event):
        await self.send_json(event["payload"])


class MarketConsumer(LoginRequiredConsumer):
    def subscriptions(self):
        return [f"market.{int(self.scope['url_route']['kwargs']['market_id'])}"]

    async def market_update(self, event):
        await self.send_json(event["payload"])
