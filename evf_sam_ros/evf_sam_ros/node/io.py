"""Creates and destroys the entities of the node's interface (``node.interface``) on an
rclpy node: services and the action with the node, lifecycle publishers on configure,
subscriptions on activate. It knows only the table, the Handlers and the settings it is
given; relative names are remapped at launch (README "Topics").
"""

from __future__ import annotations

from typing import Any

from rclpy.callback_groups import (
    CallbackGroup,
    MutuallyExclusiveCallbackGroup,
    ReentrantCallbackGroup,
)

from evf_sam_ros.node.interface import ACTIONS, GROUPS, SERVICES, TOPICS, Handlers
from evf_sam_ros.node.interface_types import load_type
from evf_sam_ros.node.settings import NodeSettings


def make_groups() -> dict[str, CallbackGroup]:
    """One new callback group per entry of ``interface.GROUPS``."""
    kinds = {
        'reentrant': ReentrantCallbackGroup,
        'mutually_exclusive': (MutuallyExclusiveCallbackGroup),
    }
    return {name: kinds[kind]() for name, kind in GROUPS.items()}


class NodeIO:
    """The node's topics, services and action, made from the interface table.

    ``node``: the rclpy (lifecycle) node the entities belong to; ``handlers``: what each
    subscription and request calls; ``groups``: callback groups by name (``make_groups``).
    """

    def __init__(self, node: Any, handlers: Handlers, groups: dict[str, CallbackGroup]):
        self._node, self._handlers, self.groups = node, handlers, groups
        self._subs: dict[str, Any] = {}
        self._pubs: dict[str, Any] = {}
        self._servers: list[Any] = []

    # ---- with the node -----------------------------------------------------------------
    def create_servers(self, settings: NodeSettings) -> None:
        """Services, the action and the non-lifecycle publishers (they exist in every state)."""
        from rclpy.action import ActionServer, CancelResponse

        node, h = self._node, self._handlers
        for srv in SERVICES:
            self._servers.append(
                node.create_service(
                    load_type(srv.type),
                    srv.name,
                    getattr(h, srv.handler),
                    callback_group=self.groups[srv.group],
                )
            )
        for action in ACTIONS:
            self._servers.append(
                ActionServer(
                    node,
                    load_type(action.type),
                    action.name,
                    getattr(h, action.execute),
                    goal_callback=getattr(h, action.goal),
                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                    callback_group=self.groups[action.group],
                )
            )
        for topic in TOPICS:
            if topic.direction == 'out' and not topic.lifecycle:
                self._pubs[topic.name] = node.create_publisher(
                    load_type(topic.type), topic.name, topic.qos(settings)
                )

    # ---- publishers (configure .. cleanup) ---------------------------------------------
    def create_publishers(self, settings: NodeSettings) -> None:
        """Lifecycle publishers of every output (they publish only while active)."""
        for topic in TOPICS:
            if topic.direction == 'out' and topic.lifecycle:
                self._pubs[topic.name] = self._node.create_lifecycle_publisher(
                    load_type(topic.type), topic.name, topic.qos(settings)
                )

    def destroy_publishers(self) -> None:
        """Remove every lifecycle publisher (cleanup)."""
        lifecycle = {t.name for t in TOPICS if t.direction == 'out' and t.lifecycle}
        for name in lifecycle & set(self._pubs):
            self._node.destroy_lifecycle_publisher(self._pubs.pop(name))

    def publish(self, name: str, msg: Any) -> None:
        """Publish on output ``name`` if it exists (configured)."""
        pub = self._pubs.get(name)
        if pub is not None:
            pub.publish(msg)

    def has_subscribers(self, name: str) -> bool:
        """True when someone subscribes to output ``name``."""
        pub = self._pubs.get(name)
        return pub is not None and pub.get_subscription_count() > 0

    # ---- subscriptions (activate .. deactivate) ----------------------------------------
    def subscribe(self, settings: NodeSettings) -> None:
        """Subscribe to the inputs these settings ask for (activate)."""
        from rclpy.event_handler import SubscriptionEventCallbacks

        events = SubscriptionEventCallbacks(incompatible_qos=self._handlers.incompatible_qos)
        for topic in TOPICS:
            if topic.direction != 'in' or not topic.when(settings):
                continue
            self._subs[topic.name] = self._node.create_subscription(
                load_type(topic.type),
                topic.name,
                getattr(self._handlers, topic.handler),
                topic.qos(settings),
                callback_group=self.groups[topic.group],
                event_callbacks=events if topic.qos_events else None,
            )

    def unsubscribe(self) -> None:
        """Remove every subscription (deactivate)."""
        for sub in self._subs.values():
            self._node.destroy_subscription(sub)
        self._subs = {}

    def publisher_present(self, name: str) -> bool:
        """True when something publishes on input ``name`` (e.g. 'depth'); then a late
        message is worth waiting for.
        """
        sub = self._subs.get(name)
        return sub is not None and self._node.count_publishers(sub.topic_name) > 0


def qos_advice(settings: NodeSettings) -> str:
    """The warning for an input publisher whose QoS does not match the subscription's."""
    return (
        "an input publisher's QoS is incompatible with this subscription "
        f'(image_qos.reliability={settings.image_qos_reliability}); for best-effort cameras '
        'set image_qos.reliability: best_effort'
    )
