<#
.SYNOPSIS
    Export a Hyper-V failover cluster's inventory for hvweb. Read-only.

.DESCRIPTION
    Run on a node of the cluster (Windows PowerShell 5.1 or PowerShell 7), as a
    user who may read the cluster and Hyper-V on every node. It only reads: it
    calls Get-* cmdlets of the FailoverClusters and Hyper-V modules and two CIM
    classes (Win32_OperatingSystem, Win32_Processor), and writes one JSON file
    (UTF-8, no byte-order mark) that hvweb imports:

        Get-Cluster                   Name, Id, Domain, MaximumParallelMigrations
        Get-ClusterSharedVolume       Name, OwnerNode, State,
                                      SharedVolumeInfo.FriendlyVolumeName, .Partition
        Get-ClusterSharedVolumeState  StateInfo, BlockRedirectedIOReason (per node)
        Get-ClusterNode               Name, State, DrainStatus
        Get-VMHost                    MemoryCapacity, MaximumVirtualMachineMigrations,
                                      VirtualMachineMigrationPerformanceOption,
                                      VirtualMachineMigrationEnabled,
                                      VirtualMachineMigrationAuthenticationType
        Win32_OperatingSystem         Caption, Version, SystemDrive,
                                      TotalVisibleMemorySize
        Win32_Processor               Manufacturer, Name
        Get-VM                        Name, VMId, State, MemoryStartup, MemoryAssigned,
                                      ProcessorCount, Generation, AutomaticStartAction,
                                      IsClustered
        Get-VMHardDiskDrive           Path, ControllerType (and Get-VHD's Size)
        Get-VMNetworkAdapter          Name, MacAddress, SwitchName
        Get-ClusterGroup              Priority (of each VM's clustered role)

    Enums are written by name on every PowerShell version, so the file does not
    depend on release-specific numbers. Nothing in the cluster is changed.

    Every cmdlet and parameter used is documented under
    https://learn.microsoft.com/powershell/module/failoverclusters/ (Get-Cluster,
    Get-ClusterResource, Get-ClusterParameter, Get-ClusterGroup,
    Get-ClusterSharedVolume, Get-ClusterSharedVolumeState -Node, Get-ClusterNode)
    and https://learn.microsoft.com/powershell/module/hyper-v/ (Get-VMHost,
    Get-VM, Get-VMHardDiskDrive -VM, Get-VMNetworkAdapter -VM, and Get-VHD
    -Path -ComputerName, asked of the VM's own host: a VHD in use on shared
    storage can only be read from the host using it).

.PARAMETER Path
    The file to write. Default: hvweb-<cluster>.json in the current folder.

.PARAMETER Cluster
    The cluster to export. Default: the local node's cluster.

.PARAMETER StorageKind
    The SAN behind the Cluster Shared Volumes, FibreChannel or iSCSI, when you
    want hvweb to record it (the cmdlets above do not say).

.EXAMPLE
    .\export-hyperv.ps1 -StorageKind iSCSI
    Writes hvweb-<cluster>.json for the local cluster.
#>
[CmdletBinding()]
param(
    [string] $Path,
    [string] $Cluster = '.',
    [ValidateSet('FibreChannel', 'iSCSI')]
    [string] $StorageKind
)

$ErrorActionPreference = 'Stop'
Import-Module FailoverClusters
Import-Module Hyper-V

function Get-Name($Value) {
    # An enum's name on every PowerShell version (5.1's ConvertTo-Json writes
    # numbers, and some numbers mean different states in different releases).
    if ($null -eq $Value) { return $null }
    return [string]$Value
}

function Get-OptionalProperty($Object, [string] $Name) {
    # Properties that older releases lack (Generation before 2012 R2, the
    # cluster's MaximumParallelMigrations before 2022) are written as null.
    if ($null -eq $Object) { return $null }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return $property.Value
}

$theCluster = Get-Cluster -Name $Cluster
$clusterName = $theCluster.Name
if (-not $Path) { $Path = Join-Path (Get-Location) "hvweb-$clusterName.json" }

# Each clustered VM's role priority (0 No Auto Start, 1000 Low, 2000 Medium,
# 3000 High), keyed by VMId through the role's "Virtual Machine" resource.
$priorityByVmId = @{}
try {
    $vmResources = Get-ClusterResource -Cluster $clusterName |
        Where-Object { (Get-Name $_.ResourceType) -eq 'Virtual Machine' }
    foreach ($resource in $vmResources) {
        $vmIdParameter = $resource | Get-ClusterParameter -Name VmID
        $groupName = $resource.OwnerGroup
        if ($groupName -isnot [string]) { $groupName = $groupName.Name }
        $group = Get-ClusterGroup -Cluster $clusterName -Name $groupName
        $priorityByVmId[([string]$vmIdParameter.Value).ToLowerInvariant()] = [int]$group.Priority
    }
}
catch {
    Write-Warning "Could not read the clustered roles' priorities: $($_.Exception.Message)"
}

$csvs = @(Get-ClusterSharedVolume -Cluster $clusterName | ForEach-Object {
    $info = @($_.SharedVolumeInfo)[0]
    [pscustomobject][ordered]@{
        Name             = $_.Name
        OwnerNode        = [string]$_.OwnerNode.Name
        State            = Get-Name $_.State
        SharedVolumeInfo = @([pscustomobject][ordered]@{
            FriendlyVolumeName = $info.FriendlyVolumeName
            Partition          = [pscustomobject][ordered]@{
                Size      = [int64]$info.Partition.Size
                FreeSpace = [int64]$info.Partition.FreeSpace
            }
        })
    }
})

$clusterNodes = @(Get-ClusterNode -Cluster $clusterName)
$index = 0
$nodes = @(foreach ($clusterNode in $clusterNodes) {
    $index++
    $name = $clusterNode.Name
    Write-Progress -Activity "Exporting $clusterName" -Status $name `
        -PercentComplete (100 * $index / $clusterNodes.Count)

    $os = Get-CimInstance -ClassName Win32_OperatingSystem -ComputerName $name
    $processors = @(Get-CimInstance -ClassName Win32_Processor -ComputerName $name |
        ForEach-Object { [pscustomobject][ordered]@{ Manufacturer = $_.Manufacturer; Name = $_.Name } })

    $vmHost = $null
    $vms = @()
    try {
        $h = Get-VMHost -ComputerName $name
        $vmHost = [pscustomobject][ordered]@{
            MemoryCapacity                            = [int64]$h.MemoryCapacity
            MaximumVirtualMachineMigrations           = [int]$h.MaximumVirtualMachineMigrations
            VirtualMachineMigrationPerformanceOption  = Get-Name (Get-OptionalProperty $h 'VirtualMachineMigrationPerformanceOption')
            VirtualMachineMigrationEnabled            = [bool]$h.VirtualMachineMigrationEnabled
            VirtualMachineMigrationAuthenticationType = Get-Name $h.VirtualMachineMigrationAuthenticationType
        }
        $vms = @(Get-VM -ComputerName $name | ForEach-Object {
            $vm = $_
            $drives = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object {
                $size = $null
                if ($null -eq $_.DiskNumber -and $_.Path) {
                    try { $size = [int64](Get-VHD -Path $_.Path -ComputerName $name).Size } catch { }
                }
                [pscustomobject][ordered]@{
                    Path           = $_.Path
                    ControllerType = Get-Name $_.ControllerType
                    DiskNumber     = $_.DiskNumber
                    Size           = $size
                }
            })
            $adapters = @(Get-VMNetworkAdapter -VM $vm | ForEach-Object {
                [pscustomobject][ordered]@{
                    Name       = $_.Name
                    MacAddress = $_.MacAddress
                    SwitchName = $_.SwitchName
                }
            })
            $vmId = ([string]$vm.VMId).ToLowerInvariant()
            $priority = $null
            if ($priorityByVmId.ContainsKey($vmId)) { $priority = $priorityByVmId[$vmId] }
            [pscustomobject][ordered]@{
                Name                 = $vm.Name
                VMId                 = $vmId
                State                = Get-Name $vm.State
                MemoryStartup        = [int64]$vm.MemoryStartup
                MemoryAssigned       = [int64]$vm.MemoryAssigned
                ProcessorCount       = [int]$vm.ProcessorCount
                Generation           = Get-OptionalProperty $vm 'Generation'
                AutomaticStartAction = Get-Name $vm.AutomaticStartAction
                IsClustered          = [bool]$vm.IsClustered
                Priority             = $priority
                HardDrives           = $drives
                NetworkAdapters      = $adapters
            }
        })
    }
    catch {
        # Windows Server 2008 has no Hyper-V module: the node is still exported
        # (its operating system tells its Hyper-V release), without its VMs.
        Write-Warning "${name}: no Hyper-V data ($($_.Exception.Message))"
    }

    $csvStates = @()
    try {
        $csvStates = @(Get-ClusterSharedVolumeState -Cluster $clusterName -Node $name |
            ForEach-Object {
                [pscustomobject][ordered]@{
                    Name                    = $_.Name
                    StateInfo               = Get-Name $_.StateInfo
                    BlockRedirectedIOReason = Get-Name $_.BlockRedirectedIOReason
                }
            })
    }
    catch {
        # Get-ClusterSharedVolumeState came with Windows Server 2012 R2.
        $csvStates = $null
    }

    [pscustomobject][ordered]@{
        Name            = $name
        State           = Get-Name $clusterNode.State
        DrainStatus     = Get-Name (Get-OptionalProperty $clusterNode 'DrainStatus')
        VMHost          = $vmHost
        OperatingSystem = [pscustomobject][ordered]@{
            Caption                = $os.Caption
            Version                = $os.Version
            SystemDrive            = $os.SystemDrive
            TotalVisibleMemorySize = [int64]$os.TotalVisibleMemorySize
        }
        Processor       = $processors
        CsvStates       = $csvStates
        vms             = $vms
    }
})
Write-Progress -Activity "Exporting $clusterName" -Completed

$storage = $null
if ($StorageKind) { $storage = $StorageKind }
$document = [ordered]@{
    Format        = 'hvweb-hyperv-inventory'
    FormatVersion = 1
    ExportedAt    = (Get-Date).ToUniversalTime().ToString('o')
    ComputerName  = $env:COMPUTERNAME
    Cluster       = [ordered]@{
        Name                      = $clusterName
        Id                        = [string]$theCluster.Id
        Domain                    = $theCluster.Domain
        MaximumParallelMigrations = Get-OptionalProperty $theCluster 'MaximumParallelMigrations'
    }
    StorageKind   = $storage
    csvs          = $csvs
    nodes         = $nodes
}

# -Depth 8: the deepest value (a CSV's Partition.Size) is 6 levels down; the
# default of 2 would write nested objects as their type names.
$json = ConvertTo-Json -InputObject $document -Depth 8
$fullPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
[System.IO.File]::WriteAllText($fullPath, $json, (New-Object System.Text.UTF8Encoding $false))
Write-Host "Wrote $fullPath ($($clusterNodes.Count) nodes, $(($nodes | ForEach-Object { $_.vms.Count } | Measure-Object -Sum).Sum) VMs). Import it with hvweb's Import page, or: python manage.py import_hyperv `"$fullPath`" --team <team>"
