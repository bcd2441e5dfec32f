import factory
from django.contrib.auth import get_user_model

from stores.models import City, Region, Role, StaffProfile, Store, StoreMembership, Warehouse


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = "ZJ"
    name = "浙江"


class CityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = City
        django_get_or_create = ("code",)

    region = factory.SubFactory(RegionFactory)
    code = "HZ"
    name = "杭州"


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse

    code = factory.Sequence(lambda n: f"WH{n:03d}")
    name = factory.Sequence(lambda n: f"仓库{n}")
    kind = Warehouse.Kind.CENTRAL
    city = factory.SubFactory(CityFactory)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"门店{n}")
    city = factory.SubFactory(CityFactory)
    warehouse = factory.SubFactory(WarehouseFactory, kind=Warehouse.Kind.STORE, city=factory.SelfAttribute("..city"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass-1234")


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffProfile
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    employee_no = factory.Sequence(lambda n: f"E{n:05d}")
    display_name = factory.Sequence(lambda n: f"员工{n}")
    role = Role.CLERK

    @factory.post_generation
    def store(self, create, extracted, **kwargs):
        if create and extracted is not None:
            StoreMembership.objects.create(staff=self, store=extracted)
