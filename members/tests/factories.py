"""Factories for members and their ledgers' configuration.

Balances are never set by a factory: they change only through the services,
so a factory-made member always starts with empty ledgers.
"""

from decimal import Decimal

import factory

from members.models import Member, MemberIdentity, PointsRule, RechargePackage, RegistrationChannel, Tier


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"tier{n}")
    name = factory.Sequence(lambda n: f"等级{n}")
    min_spend = Decimal("0.00")
    points_multiplier = Decimal("1.00")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    phone = factory.Sequence(lambda n: f"+86139{n:08d}")
    name = factory.Sequence(lambda n: f"会员{n}")
    registration_channel = RegistrationChannel.POS


class MemberIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberIdentity

    member = factory.SubFactory(MemberFactory)
    kind = "wechat_openid"
    namespace = "wx-app"
    value = factory.Sequence(lambda n: f"openid-{n:06d}")


class PointsRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PointsRule

    channel = ""
    category = None
    points_per_yuan = Decimal("1.00")


class RechargePackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RechargePackage

    name = factory.LazyAttribute(lambda o: f"充{o.pay_amount}送{o.bonus_amount}")
    pay_amount = Decimal("1000.00")
    bonus_amount = Decimal("100.00")
